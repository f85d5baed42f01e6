"""A study's price before it starts, and the weights it needs.

``--estimate`` times each distinct *cost arm* of the study once (``tuner.cost.estimate.cost_key``:
the fields that change compute) on synthetic images at the profile's sizes, on this machine,
then prices every trial of every part. A part's hours count all its trials; the total counts a
configuration shared by parts once, as the study trains it once. At a profile with published
split sizes (``paper``) the times scale to those sizes and epochs; on a CPU the probe batch is
small and the per-image time is scaled to the profile's batch (close to linear on a CPU).
``--gpu NAME`` adds the price on a GPU from its measured rate (``GPU_RATES``, source given).
Nothing of the study starts: no Ray trial, no MLflow run.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from fer_core.cli import UserError
from tuner.study.parts import StudyPlan

CPU_PROBE_BATCH = 4
MAX_TIMED_ARMS = 6
"""Arms timed at most (most trials first); the rest cost the mean of timed arms of the same
network, else of all (``--estimate`` stays within minutes on a CPU)."""


@dataclass(frozen=True)
class GpuRate:
    """Training images per second of ResNet-50 at 224 px, batch 32, and where it comes from."""

    images_per_s: float
    source: str


GPU_RATES: dict[str, GpuRate] = {}
"""Filled from measurements (docs/studies.md says how); a GPU absent here is refused."""


def require_weights(plan: StudyPlan) -> None:
    """Offline without the study's ImageNet weights: the one-line error naming the fetch."""
    from fer_core.models.hub import require_for

    require_for(t.config for t in plan.all_trials().values())


def needed_models(plan: StudyPlan) -> list[str]:
    return sorted({t.config["backbone"] for t in plan.all_trials().values()
                   if t.config.get("pretrained") == "imagenet"})


def fetch_weights(plan: StudyPlan, cache: str | None) -> int:
    """``--fetch-weights``: every ImageNet weight file the study reads, into ``cache``."""
    from fer_core.weights import main as weights_main

    models = needed_models(plan)
    if not models:
        print(f"study {plan.study.name} at profile {plan.profile} uses no ImageNet weights")
        return 0
    return weights_main(["fetch", *models, *(["--cache", cache] if cache else [])])


def probe_config(flat: Mapping[str, Any], batch: int) -> dict[str, Any]:
    """A trial's config on a few synthetic images, one probe batch per step."""
    return {**flat, "dataset": "synthetic", "data_root": None, "batch_size": batch,
            "max_train_batches": 0, "xai_images": min(int(flat.get("xai_images", 2)), 2),
            "synthetic_n": max(21, math.ceil(batch / 0.6) + 7), "pretrained": None}


def shape_for(plan: StudyPlan, flat: Mapping[str, Any], measured: Any) -> Any:
    """The trial's sizes: the profile's published splits, else the data's own (measured)."""
    from search_spaces.profiles import get_profile
    from tuner.cost.estimate import TrialShape

    sizes = get_profile(plan.profile).split_sizes.get(flat.get("dataset"))
    if sizes is None:
        return replace(measured, epochs=int(flat["epochs"]))
    val = round(sizes.train_images * float(flat.get("val_fraction", 0.1)))
    batches = math.ceil((sizes.train_images - val) / int(flat["batch_size"]))
    return TrialShape(batches, val, sizes.test_images, int(flat["epochs"]))


class Timer:
    """Times each cost arm once; arms past ``MAX_TIMED_ARMS`` get a stand-in."""

    def __init__(self, plan: StudyPlan, cache: str, max_arms: int = MAX_TIMED_ARMS) -> None:
        import torch

        self.plan, self.cache, self.max_arms = plan, cache, max_arms
        self.gpu = torch.cuda.is_available() and bool(plan.args.gpus_per_trial)
        self.costs: dict[Any, tuple[Any, Any]] = {}
        self.finals: dict[Any, float] = {}

    def time(self, flat: Mapping[str, Any]) -> tuple[Any, Any]:
        """``flat``'s cost (its step at its own batch) and the measured data's shape."""
        cost, shape = self.per_image(flat)
        return replace(cost, step_s=cost.step_s * int(flat["batch_size"])), shape

    def per_image(self, flat: Mapping[str, Any]) -> tuple[Any, Any]:
        """The arm's cost with ``step_s`` per training image: arms that differ only in data,
        batch or epochs (RAF-DB and AffectNet at one network) share one timing."""
        from search_spaces.profiles import get_profile
        from tuner.cost.estimate import cost_key, final_key, measure, stand_in

        published = bool(get_profile(self.plan.profile).split_sizes)
        key = cost_key({**flat, "dataset": "", "data_root": "", "epochs": 0, "batch_size": 0}
                       if published else flat)
        if key in self.costs:
            return self.costs[key]
        if len(self.costs) >= self.max_arms:
            same = [c for k, c in self.costs.items()
                    if dict(k).get("backbone") == str(flat.get("backbone"))]
            pool = same or list(self.costs.values())
            return stand_in([c for c, _ in pool]), pool[0][1]
        batch = int(flat["batch_size"])
        # Published sizes: a few synthetic images at the trial's sizes stand for the data;
        # else the trial's own data is small enough to time as it is.
        probe = (batch if self.gpu else min(batch, CPU_PROBE_BATCH)) if published else batch
        config = probe_config(flat, probe) if published else {**flat}
        config["device"] = "cuda" if self.gpu else "cpu"
        cost, shape = measure(config, self.cache, steps=2, eval_batches=1,
                              final_s=self.finals.get(final_key(config)))
        self.finals.setdefault(final_key(config), cost.final_s)
        self.costs[key] = (replace(cost, step_s=cost.step_s / probe), shape)
        return self.costs[key]


def trial_hours(plan: StudyPlan, timer: Timer, flat: Mapping[str, Any]) -> float:
    cost, measured = timer.time(flat)
    return shape_for(plan, flat, measured).seconds(cost) / 3600


def run_estimate(plan: StudyPlan, gpu: str | None = None) -> str:
    """Device-hours per part and in total on this machine (and on ``gpu``); starts nothing."""
    import torch

    rate = None
    if gpu is not None:
        if gpu not in GPU_RATES:
            raise UserError(f"--gpu {gpu!r}: no measured rate; known: "
                            f"{', '.join(GPU_RATES) or 'none yet'} (docs/studies.md)")
        rate = GPU_RATES[gpu]
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    devices = plan.args.gpus_per_trial or plan.args.cpus_per_trial or 1.0
    began = time.perf_counter()
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory(prefix="study-estimate-") as cache:
        timer = Timer(plan, cache, plan.args.max_arms)
        ordered = sorted(plan.all_trials().values(),  # most-shared networks timed first
                         key=lambda t: (t.config.get("backbone") != plan.jobs[0].trials[0]
                                        .config.get("backbone")))
        hours = {t.key: trial_hours(plan, timer, t.config) for t in ordered}
    torch.set_num_threads(threads)
    lines = [f"estimate for study {plan.study.name} at profile {plan.profile} on {device} "
             f"({len(timer.costs)} cost arms timed, {time.perf_counter() - began:.0f} s; "
             f"{devices:g} device(s) per trial); nothing was started",
             f"{'part':<46} {'configs':>7} {'trials':>6} {'device-hours':>13}"]
    for job in plan.jobs:
        part = sum(hours[t.key] for t in job.trials) * devices
        lines.append(f"{job.label[:46]:<46} {job.configurations:>7} {len(job.trials):>6} "
                     f"{part:>13.2f}")
    total = sum(hours.values()) * devices
    lines.append(f"{'total (each configuration once)':<46} {'':>7} {len(hours):>6} "
                 f"{total:>13.2f}")
    if rate is not None:
        here = resnet50_rate(timer)
        lines.append(f"on {gpu}: ~{total * here / rate.images_per_s:.1f} GPU-hours "
                     f"(ResNet-50 {rate.images_per_s:g} img/s there against {here:.1f} here; "
                     f"source: {rate.source})")
    lines.append(f"study_device_hours={total:.2f}")
    return "\n".join(lines)


def resnet50_rate(timer: Timer) -> float:
    """Training images per second of the timed ResNet-50 arm here (the GPU rates' unit)."""
    for key, (cost, _) in timer.costs.items():
        if dict(key).get("backbone") == "resnet50":
            return 1.0 / cost.step_s  # step_s is per training image
    raise UserError("--gpu prices scale a ResNet-50 arm: use a profile with ResNet-50 (paper)")
