"""Ground truth from the shortcut cue (docs/method.md §7.2); registered as ``shortcut``.

λ ∈ {0, 4} at layer 5 × the probability of the class square in train/val images ∈ {0, 1}: the
arms with p = 0 never saw the cue and are the control of what the measurement reads on a model
that cannot use it. Every trial scores ``shortcut_images`` test images with the square painted
in (``test_shortcut_*``; the report's "Shortcut cue" section). Training runs on the evaluation
transform (``augment=false``): the crop, flips and colour jitter cut, move and recolour the small
square, and with them the models did not learn it.
"""

from __future__ import annotations

from search_spaces.base import SweepSpace, arm_by, register
from search_spaces.lambda_grid import SPACE as LAMBDA
from search_spaces.params import grid
from search_spaces.sizes import LAPTOP, PAPER_POINT

SHORTCUT_PROBABILITIES = (0.0, 1.0)
SHORTCUT_IMAGES = 48
"""Test images scored per trial: the measurement's size in docs/method.md §7.2. About 0.7 s of
one core per trial at the laptop sizes (under 1 % of a trial of ~2.5 min)."""

SPACE = register(
    SweepSpace(
        name="shortcut",
        description="λ ∈ {0, 4} at layer 5 × shortcut cue probability ∈ {0, 1}, trained without "
                    "augmentation: reliance on the cue against attribution to it",
        reproduces="method §7.2",
        params={
            "lambda_au": grid([0.0, PAPER_POINT["lambda_au"]]),
            "layers": PAPER_POINT["layers"],
            "shortcut": grid(SHORTCUT_PROBABILITIES),
            "augment": False,
            "shortcut_images": SHORTCUT_IMAGES,
        },
        metric=LAMBDA.metric,
        mode=LAMBDA.mode,
        searcher="grid",
        # Every arm is a cell of the report's table: no arm is stopped early.
        scheduler="fifo",
        overrides=LAPTOP,
        arm=arm_by("shortcut", "lambda_au"),
    )
)
