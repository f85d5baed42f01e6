"""Points and layer sets shared by the spaces; their sizes come from the profiles.

``LAPTOP`` and ``TINY`` are the ``laptop`` and ``smoke`` profiles' fields
(``search_spaces/profiles/``, where their measurements are written down): the spaces pin them by
default, ``--profile`` replaces them.
"""

from __future__ import annotations

from typing import Any

from search_spaces.params import choice, loguniform
from search_spaces.profiles.laptop import PROFILE as _laptop
from search_spaces.profiles.smoke import PROFILE as _smoke

LAPTOP: dict[str, Any] = dict(_laptop.fields)

TINY: dict[str, Any] = dict(_smoke.fields)
"""For ``smoke`` and ``--smoke-test``: every code path, seconds per trial."""

LAYER_SETS: tuple[str, ...] = ("5", "4", "3", "2", "1", "5+4", "5+4+3", "5+4+3+2", "5+4+3+2+1")
"""The layer sets of the paper's Table 3 (docs/method.md §5 numbering)."""

BASELINE: dict[str, Any] = {"lambda_au": 0.0, "layers": "5"}
"""The vanilla model: same everything, no AU term."""

LAMBDA_RANGE: tuple[float, float] = (0.1, 20.0)
"""λ searched log-uniformly over this range (docs/method.md §8: below 1 to 20)."""


def lambda_x_layers() -> dict[str, Any]:
    """λ (log-uniform over ``LAMBDA_RANGE``) × the Table 3 layer sets, for the searched spaces."""
    return {"lambda_au": loguniform(*LAMBDA_RANGE), "layers": choice(LAYER_SETS)}


PAPER_POINT: dict[str, Any] = {"lambda_au": 4.0, "layers": "5"}
"""The paper's recommended setting (Fig. 5's CL peak, Table 3's best layer)."""
