"""A sweep's own price: ``tuner.cost.estimate`` timed before the trials, or beside them.

Timing the arms takes ~10–20 s at laptop sizes. When the trials leave a core of this machine
free (a local CPU sweep running fewer trials at once than there are cores), the timing runs in
a background thread on that core while Tune starts its trials, and nobody waits for it before
the first trial. Otherwise it runs first: timing on a core a trial uses would slow the trial
and inflate the price. The closing summary waits for it either way.
"""

from __future__ import annotations

import os
import threading
from dataclasses import replace

from tuner.cost.estimate import QUICK, Prediction, predict, timing_threads
from tuner.spec.settings import SweepSettings
from tuner.spec.spec import SweepSpec


def spare_cores(cores: int, ray_cpus: float, settings: SweepSettings) -> int:
    """Cores of this machine that no trial can take: none for a GPU sweep (its timing would
    share the trials' GPU)."""
    if settings.resources_gpu > 0:
        return 0
    busy = min(ray_cpus, settings.max_concurrent * settings.resources_cpu)
    return max(0, int(cores - busy))


def local_spare_cores(settings: SweepSettings) -> int:
    """``spare_cores`` for the local Ray this process runs (its CPUs as Ray counts them)."""
    import ray

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return spare_cores(cores or 1, ray.cluster_resources().get("CPU", 0.0), settings)


def predict_quietly(resolved: SweepSpec, cache_dir: str,
                    address: str | None) -> Prediction | None:
    """The sweep's predicted price (timing less than ``--estimate``: see ``estimate.QUICK``);
    a failure to predict is a note, never a reason not to run the sweep. The timing's scratch
    lies in the sweep's folder when that is a local or shared path."""
    folder = resolved.folder
    try:
        return predict(resolved, cache_dir, address, QUICK,
                       scratch=None if folder.is_uri else str(folder))
    except Exception as err:  # noqa: BLE001 - the sweep itself will report a real problem
        print(f"note: no cost prediction for this sweep ({err!r})", flush=True)
        return None


class Pricing:
    """The sweep's prediction, saved in its folder (``estimate.json``) once it is known."""

    def __init__(self, spec: SweepSpec) -> None:
        self.resolved, self.cache_dir, self.address, self.folder = (
            spec, spec.place.data_cache, spec.place.address, spec.folder)
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        """Time now (before the trials), or in a background thread beside them when a local
        sweep leaves free as many cores as the timing uses."""
        settings = self.resolved.settings
        if self.address or local_spare_cores(settings) < timing_threads(settings):
            self._price(False)
            return
        # A daemon: a sweep stopped by Ctrl-C exits without waiting for its price.
        self.thread = threading.Thread(target=self._price, args=(True,), daemon=True,
                                       name="cost-prediction")
        self.thread.start()

    def _price(self, beside_trials: bool) -> None:
        prediction = predict_quietly(self.resolved, self.cache_dir, self.address)
        if prediction is not None:
            replace(prediction, beside_trials=beside_trials).save(self.folder)

    def wait(self) -> None:
        """Block until the prediction is saved (or has failed with a note)."""
        if self.thread is not None:
            self.thread.join()
