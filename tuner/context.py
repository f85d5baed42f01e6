"""What every trial of a sweep shares: pinned config, tracking target, provenance, data cache.

Handed to the trainable through ``tune.with_parameters`` (stored once in the object store, not
copied into every trial's config) and written to ``<sweep folder>/sweep.json`` so that
``--resume`` rebuilds exactly the same trainable.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tuner.mlflow_runs import TrackingTarget

SWEEP_FILE = "sweep.json"


@dataclass(frozen=True)
class SweepContext:
    """Sweep-level constants; every path in here is absolute (trials run in their own cwd)."""

    base: Mapping[str, Any]
    """Pinned flat config fields: the space's overrides, then the user's ``--set`` values."""
    target: TrackingTarget
    git_commit: str = "unknown"
    data_fingerprint: str = "unknown"
    cache_dir: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    """The sweep's own settings (space, metric, seeds, ...), for the record and for resume."""

    def save(self, folder: Path) -> Path:
        path = folder / SWEEP_FILE
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2, default=str))
        return path

    @classmethod
    def load(cls, folder: Path) -> SweepContext:
        data = json.loads((folder / SWEEP_FILE).read_text())
        data["target"] = TrackingTarget(**data["target"])
        return cls(**data)
