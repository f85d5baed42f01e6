"""Shared test settings: small thread counts (CI has 2 cores) and local-only Ray."""

import os
import shutil
import tempfile

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


@pytest.fixture(scope="module")
def ray_runtime():
    """One local Ray per test module that runs sweeps in-process: 2 CPUs, a private temp dir.

    Yields the GCS address (for subprocess drivers given ``--address``).
    """
    import ray

    temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths are limited
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)
