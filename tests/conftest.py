"""Shared test settings: small thread counts (CI has 2 cores) and local-only Ray."""

import os

import pytest
import torch

# Local test clusters need no token auth; real clusters keep Ray's default (auth on).
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
torch.set_num_threads(2)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
