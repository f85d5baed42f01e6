"""``smoke``: the tiniest real run, every code path in seconds per trial (tests, CI)."""

from __future__ import annotations

from search_spaces.profiles import Profile, register
from search_spaces.profiles.laptop import CPU_NETWORK, OWN_NETWORKS

PROFILE = register(Profile(
    name="smoke",
    description="resnet18, 32 px, 70 synthetic faces, 2 epochs of 2 batches: plumbing only",
    fields={
        **CPU_NETWORK,
        "img_size": 32,
        "synthetic_n": 70,
        "epochs": 2,
        "batch_size": 16,
        "max_train_batches": 2,
        "xai_images": 2,  # every xai metric reaches the runs, at plumbing cost
    },
    networks=OWN_NETWORKS,
))
