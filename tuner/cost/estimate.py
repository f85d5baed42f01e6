"""The price of a sweep before its launch: ``python -m tuner.sweep --space NAME --estimate``.

Each distinct *cost arm* (fields that change compute: network, sizes, aligned layers, AU term
on or off; not λ's value, the seed or the learning rate) is built at the configured sizes on a
trial's device and timed for a few training steps and one evaluation pass; scaled by split
sizes and epochs this gives each trial's time, and summed: trial-hours, device-hours, wall clock
at the sweep's concurrency, ASHA's possible saving, and disk (bytes of the saved state dicts).

Nothing of the sweep starts. On a cluster (``--address``) the timing runs in one Ray task
holding a trial's resources; locally in this process with a trial's CPU count as torch's
threads. A real sweep records its prediction (``estimate.json``) for its closing summary.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from search_spaces.params import fixed_values
from tuner.cost import spread
from tuner.cost.asha import asha_epochs, asha_finished, stop_draws
from tuner.cost.timing import (  # noqa: F401  (ESTIMATE_FILE, measure: the estimate's API)
    ESTIMATE_FILE,
    FULL,
    QUICK,
    TIMED_STEPS,
    WARMUP_STEPS,
    ArmCost,
    Timing,
    TrialShape,
    cost_key,
    final_key,
    measure,
    save_selected_model,
)
from tuner.spec.context import StoragePath
from tuner.spec.settings import SweepSettings
from tuner.spec.spec import SweepSpec

WEIGHT_COPIES_PER_FINISHED_TRIAL = 1
"""A finished trial's copies of its weights: its MLflow model (its last checkpoint has none)."""
MB = 1e6


@dataclass(frozen=True)
class Arm:
    """One cost arm: a representative flat config and the trials that share its cost."""

    config: dict[str, Any]
    trials: float
    """Expected trials of this arm (a searched space spreads its samples evenly)."""
    reference: bool
    """Reference trials always run to the end (ASHA never stops them)."""


def arms(resolved: SweepSpec) -> list[Arm]:
    """The sweep's cost arms with their expected trial counts (× seeds).

    Assumption for a searched space: its samples fall evenly on the cost arms of its choices
    (each categorical choice, each end of a numeric range), reference points counted exactly.
    """
    from fer_core.config import ExperimentConfig

    base, plan, settings = resolved.base, resolved.plan, resolved.settings
    seeds = settings.seeds
    by_key: dict[Any, list[Any]] = {}

    def add(point: Mapping[str, Any], trials: float, reference: bool) -> None:
        flat = ExperimentConfig.from_flat({**base, **point}).to_flat()  # every field, canonical
        key = (cost_key(flat), reference)
        entry = by_key.setdefault(key, [flat, 0.0, reference])
        entry[1] += trials

    for point in plan.reference_points:
        add(point, seeds, True)
    points = list(fixed_values(plan.params))
    if resolved.space.searcher == "grid":
        for point in points:
            add(point, seeds, False)
    else:
        searched = max(settings.num_configs - len(plan.reference_points), 0)
        keys = {cost_key(ExperimentConfig.from_flat({**base, **p}).to_flat()): p
                for p in points}  # one point per cost arm
        for point in keys.values():
            add(point, searched * seeds / len(keys), False)
    return [Arm(cfg, n, ref) for cfg, n, ref in by_key.values() if n > 0]


def wall_clock_s(durations: Sequence[float], slots: int) -> float:
    """Trials started in order on ``slots`` free slots, each as soon as one frees."""
    ends = [0.0] * max(slots, 1)
    for d in durations:
        i = ends.index(min(ends))
        ends[i] += d
    return max(ends)


INTERVAL_LABEL = "90 % interval"


@dataclass(frozen=True)
class Prediction:
    """What ``--estimate`` prints and a sweep records (``estimate.json``)."""

    trials: float
    trial_hours: float
    trial_hours_asha: float
    device_hours: float
    device_unit: str
    wall_clock_h: float
    disk_bytes: float
    device: str
    lines: tuple[str, ...]
    trial_hours_expected: float | None = None
    """Expected under the sweep's scheduler (ASHA simulated by ``tuner.cost.asha``); None in the
    ``estimate.json`` of a sweep started before it existed."""
    measured_s: float | None = None
    """Seconds the measuring took."""
    beside_trials: bool = False
    """A sweep timed it beside its first trials, on a core they left free
    (``tuner.cost.pricing``); else before them, the trials waiting ``measured_s``."""
    trial_hours_low: float | None = None
    trial_hours_high: float | None = None
    """The central 90 % of the trial-hours over simulated draws of which trials ASHA stops,
    each times the timing's own error (``tuner.cost.spread``)."""

    def save(self, folder: StoragePath) -> None:
        (folder / ESTIMATE_FILE).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, folder: StoragePath) -> Prediction | None:
        path = folder / ESTIMATE_FILE
        data = json.loads(path.read_text()) if path.exists() else None
        return cls(**{**data, "lines": tuple(data["lines"])}) if data else None

    def compare(self, actual_hours: float, trials_run: float | None = None) -> Comparison:
        """The prediction against ``actual_hours``. A sweep that ran ``trials_run`` of its
        predicted trials (interrupted, budget-stopped) is compared with that share of the
        prediction: like with like."""
        # ``trials`` is a sum of fractional arm shares (6.000000000000002 for 6 trials).
        ran_all = not trials_run or trials_run >= round(self.trials, 6)
        share = 1.0 if ran_all else trials_run / self.trials
        expected = (self.trial_hours_expected or self.trial_hours) * share
        low = high = None
        if self.trial_hours_low is not None and self.trial_hours_high is not None:
            low, high = self.trial_hours_low * share, self.trial_hours_high * share
        return Comparison(expected, actual_hours, low, high, share)

    def against(self, actual_hours: float, trials_run: float | None = None) -> str:
        """The closing summary's line: predicted against actual trial-hours."""
        if actual_hours <= 0:
            return f"predicted {self.trial_hours:.3f} trial-hours; no trial time recorded"
        c = self.compare(actual_hours, trials_run)
        if c.low is not None and c.high is not None:
            inside = "inside" if c.inside else "OUTSIDE"
            span = f" ({INTERVAL_LABEL} {c.low:.3f}–{c.high:.3f}: actual {inside})"
        else:
            span = (f" (range {self.trial_hours_asha:.3f}–{self.trial_hours:.3f})"
                    if self.trial_hours_asha < self.trial_hours else "")
        part = ("" if c.share == 1.0
                else f" for the {trials_run:g} of {round(self.trials, 6):g} trials run")
        return (f"trial-hours: predicted {c.expected:.3f}{span}{part}, actual "
                f"{actual_hours:.3f} ({c.error_pct:+.0f} %)")


@dataclass(frozen=True)
class Comparison:
    """A sweep's predicted trial-hours (its share for the trials that ran) against the actual."""

    expected: float
    actual: float
    low: float | None
    high: float | None
    share: float

    @property
    def error_pct(self) -> float:
        return 100.0 * (self.expected - self.actual) / self.actual

    @property
    def inside(self) -> bool | None:
        if self.low is None or self.high is None:
            return None
        return self.low <= self.actual <= self.high


def stand_in(costs: Sequence[ArmCost]) -> ArmCost:
    """An arm left untimed costs the mean of the timed ones (same sizes: same checkpoints)."""
    def mean(name: str) -> float:
        return sum(getattr(c, name) for c in costs) / len(costs)

    return replace(costs[0], step_s=mean("step_s"), eval_s_per_image=mean("eval_s_per_image"),
                   build_s=mean("build_s"), checkpoint_s=mean("checkpoint_s"),
                   final_s=mean("final_s"))


def timing_threads(settings: SweepSettings) -> int:
    """Torch threads the arms are timed with: a trial's CPUs (at least one)."""
    return max(1, int(settings.resources_cpu))


def measure_arms(resolved: SweepSpec, cache_dir: str | None, address: str | None,
                 timing: Timing = FULL, scratch: str | None = None,
                 ) -> list[tuple[Arm, ArmCost, TrialShape]]:
    """Time the arms (as much as ``timing`` says) where a trial would run: one Ray task with
    its resources on a cluster, else this process (no GPU unless the trial asks for one);
    their scratch goes under ``scratch`` (``timing.measure``)."""
    settings = resolved.settings
    found = []
    every = sorted(arms(resolved), key=lambda a: (not a.reference, -a.trials))
    timed, untimed = every[:timing.max_arms], every[len(every[:timing.max_arms]):]
    finals: dict[Any, float] = {}  # end-of-trial seconds by final_key (timing.share_final)
    for arm in timed:
        flat = dict(arm.config)
        if settings.resources_gpu == 0 and flat.get("device", "auto") == "auto":
            flat["device"] = "cpu"  # Ray hides the GPUs from a trial that asks for none
        args = (flat, cache_dir, timing.steps, timing_threads(settings), timing.eval_batches,
                finals.get(final_key(flat)), scratch)
        if address:
            import ray

            task = ray.remote(num_cpus=settings.resources_cpu,
                              num_gpus=settings.resources_gpu)(measure)
            cost, shape = ray.get(task.remote(*args))
        else:
            cost, shape = measure(*args)
        if timing.share_final:
            finals[final_key(flat)] = cost.final_s
        found.append((arm, cost, shape))
    if untimed:
        cost = stand_in([c for _, c, _ in found])
        found += [(arm, cost, found[0][2]) for arm in untimed]
    return found


def predict(resolved: SweepSpec, cache_dir: str | None, address: str | None = None,
            timing: Timing = FULL, scratch: str | None = None) -> Prediction:
    """Measure the arms (as much as ``timing`` says) and add up the sweep's price."""
    import torch

    settings, space = resolved.settings, resolved.space
    threads = torch.get_num_threads()
    began = time.perf_counter()
    measured = measure_arms(resolved, cache_dir, address, timing, scratch)
    measured_s = time.perf_counter() - began
    torch.set_num_threads(threads)  # measure() set a trial's count; the driver gets its own
    asha = settings.scheduler == "asha"
    lines = [f"{'arm':<44} {'trials':>6} {'step s':>7} {'eval ms/img':>11} {'trial min':>9} "
             f"{'ckpt MB':>8}"]
    durations: list[float] = []
    shared: list[tuple[float, float]] = []  # (expected trials, seconds) of spread samples
    hours = hours_asha = hours_expected = disk = trials = 0.0
    draws: Any = 0.0  # the sweep's trial-hours in each simulated draw of ASHA's stops
    searched = round(sum(arm.trials for arm, _, _ in measured if not arm.reference))
    references = round(sum(arm.trials for arm, _, _ in measured if arm.reference))
    stops_by_shape: dict[tuple[int, int], Any] = {}  # one simulation serves every arm alike
    for arm, cost, shape in measured:
        full = shape.seconds(cost)
        grace = min(space.grace_period, shape.epochs)
        early = expected = per_draw = full
        if asha and not arm.reference:
            eta = space.reduction_factor
            early = shape.seconds(cost, asha_epochs(shape.epochs, grace, eta),
                                  asha_finished(shape.epochs, grace, eta))
            # One sweep is one draw: its searched trials stop together as the draw says.
            if (shape.epochs, grace) not in stops_by_shape:
                stops_by_shape[shape.epochs, grace] = stop_draws(shape.epochs, grace, eta,
                                                                 searched, references)
            stops = stops_by_shape[shape.epochs, grace]
            per_draw = shape.seconds(cost, stops[:, 0], stops[:, 1])
            expected = float(per_draw.mean())
        draws = draws + arm.trials * per_draw / 3600
        trials += arm.trials
        hours += arm.trials * full / 3600
        hours_asha += arm.trials * early / 3600
        hours_expected += arm.trials * expected / 3600
        if float(arm.trials).is_integer():
            durations += [full] * int(arm.trials)
        else:
            shared.append((arm.trials, full))
        # A finished trial keeps its last checkpoint (its test result) and its selected weights
        # as its MLflow model; an ASHA-stopped one keeps a running checkpoint (model,
        # optimizer, maybe best weights) and no model.
        disk += arm.trials * (cost.final_checkpoint_bytes
                              + WEIGHT_COPIES_PER_FINISHED_TRIAL * cost.weight_bytes)
        c = arm.config
        label = (f"{c.get('method')} {c.get('backbone')} {c.get('img_size')}px "
                 f"L{c.get('layers')} " + ("AU" if float(c.get("lambda_au", 0)) > 0 else "λ=0")
                 + (" (ref)" if arm.reference else ""))
        lines.append(f"{label[:44]:<44} {arm.trials:>6.2f} {cost.step_s:>7.3f} "
                     f"{1000 * cost.eval_s_per_image:>11.2f} {full / 60:>9.2f} "
                     f"{cost.final_checkpoint_bytes / MB:>8.1f}")
    if shared:  # a searched space's samples: their count, each at the arms' mean time
        count = sum(n for n, _ in shared)
        durations += [sum(n * d for n, d in shared) / count] * round(count)
    low, high = spread.interval(draws)
    gpu = settings.resources_gpu
    per_trial, unit = (gpu, "GPU") if gpu > 0 else (settings.resources_cpu, "CPU")
    device = measured[0][1].device if measured else "cpu"
    return Prediction(trials, hours, hours_asha, hours * per_trial, unit,
                      wall_clock_s(durations, settings.max_concurrent) / 3600, disk, device,
                      tuple(lines), hours_expected, measured_s,
                      trial_hours_low=low, trial_hours_high=high)


def render(resolved: SweepSpec, p: Prediction, steps: int) -> str:
    """The ``--estimate`` report; its last line is ``estimated_trial_hours=<x>``."""
    s, space = resolved.settings, resolved.space
    out = [f"estimate for space {space.name} on {p.device} ({s.resources_cpu:g} CPU, "
           f"{s.resources_gpu:g} GPU per trial): {WARMUP_STEPS}+{steps} training steps (their "
           "median) and one validation pass timed per arm; nothing was started", *p.lines,
           # A grid's size is its grid, not --trials: count configurations from the arms.
           f"trials:        {round(p.trials, 6):g} ({round(p.trials / s.seeds):g} configurations "
           f"× {s.seeds} seeds)",
           f"trial-hours:   {p.trial_hours:.3f} (every trial to its last epoch)",
           f"device-hours:  {p.device_hours:.3f} {p.device_unit}-hours "
           f"({s.resources_gpu if s.resources_gpu else s.resources_cpu:g} per trial)",
           f"wall clock:    {p.wall_clock_h:.3f} h at --max-concurrent {s.max_concurrent} "
           "(trials started in order as slots free; no other load)"]
    if s.scheduler == "asha":
        saved = p.trial_hours - p.trial_hours_asha
        out.append(f"ASHA:          expected {p.trial_hours_expected:.3f} trial-hours "
                   "(simulated: these trials in launch order, none known better beforehand); "
                   f"saves up to {saved:.3f} ({100 * saved / max(p.trial_hours, 1e-12):.0f} %) "
                   f"-> ≥ {p.trial_hours_asha:.3f} if a share 1/{space.reduction_factor:g} of "
                   f"searched trials passes each rung (grace {space.grace_period} epochs); "
                   "reference trials always finish")
    else:
        out.append(f"ASHA:          not used (scheduler {s.scheduler}); --scheduler asha "
                   "could stop weak trials early")
    if p.trial_hours_low is not None:
        out.append(f"interval:      {p.trial_hours_low:.3f}–{p.trial_hours_high:.3f} "
                   "trial-hours holds 90 % of the actual: which trials ASHA stops and the "
                   "timing's error (docs/sweeps.md)")
    out.append(f"disk:          {p.disk_bytes / MB:.0f} MB (one kept checkpoint per trial + "
               f"{WEIGHT_COPIES_PER_FINISHED_TRIAL} × its selected weights as an MLflow model)")
    out.append(f"estimated_trial_hours={p.trial_hours:.4f}")
    return "\n".join(out)


def run_estimate(resolved: SweepSpec, steps: int = TIMED_STEPS) -> str:
    """``--estimate``: prepare the data (into ``--cache-dir``, else a temporary folder removed
    afterwards), measure, and return the report. No MLflow run, no sweep folder, no trial."""
    import ray

    from fer_core.config import ExperimentConfig
    from tuner.checks.data import prepare_data

    cache_dir, address = resolved.place.cache_dir, resolved.place.address
    if address:
        ray.init(address=address)
    try:
        with tempfile.TemporaryDirectory(prefix="fer-estimate-data-") as tmp:
            cache = cache_dir or tmp
            prepare_data(ExperimentConfig.from_flat(resolved.base), cache)
            prediction = predict(resolved, cache, address, Timing(steps=steps))
    finally:
        if address:
            ray.shutdown()
    return render(resolved, prediction, steps)
