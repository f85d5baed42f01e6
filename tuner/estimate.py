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
import statistics
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from search_spaces.params import fixed_values
from tuner.asha import asha_epochs, epochs_interval, expected_epochs
from tuner.context import StoragePath
from tuner.plan import ResolvedSweep
from tuner.settings import SweepSettings

ESTIMATE_FILE = "estimate.json"
TIMED_STEPS = 3
WARMUP_STEPS = 2  # the first steps pay for allocator warm-up and lazy initialisation
COST_NEUTRAL = ("seed", "lr", "lr_step", "lr_gamma", "momentum", "nesterov", "weight_decay",
                "fail_at_epoch", "checkpoint_every")
"""Flat fields that change no step's cost; ``lambda_au`` counts only as zero or not."""
FINAL_NEUTRAL = ("lambda_au", "layers")
"""Cost fields that change the training steps but not the end-of-trial work."""
WEIGHT_COPIES_PER_FINISHED_TRIAL = 1
"""A finished trial's copies of its weights: its MLflow model (its last checkpoint has none)."""
MB = 1e6
TRIAL_OVERHEAD_S = 2.5
"""Tune and MLflow per trial (run creation, reports, delivery): bench/tune_overhead.py measured
a sweep at 1.105 × a plain loop over 8 trials of ~21 s on a quiet machine."""


@dataclass(frozen=True)
class ArmCost:
    """What one arm costs, measured: seconds per training batch and per evaluated image."""

    step_s: float
    eval_s_per_image: float
    build_s: float
    checkpoint_s: float
    final_s: float
    """End-of-trial work besides the test pass: end-of-trial XAI metrics, the selected model
    copied and saved as an MLflow model, plus Tune's and MLflow's per-trial overhead."""
    weight_bytes: int
    running_checkpoint_bytes: int
    final_checkpoint_bytes: int
    device: str


@dataclass(frozen=True)
class TrialShape:
    """The sizes a trial's time scales with."""

    train_batches: int
    val_images: int
    test_images: int
    epochs: int

    def seconds(self, cost: ArmCost, epochs: float | None = None) -> float:
        """Build, ``epochs`` epochs (train, validate, checkpoint), then test and save."""
        epochs = self.epochs if epochs is None else epochs
        epoch_s = (self.train_batches * cost.step_s + self.val_images * cost.eval_s_per_image
                   + cost.checkpoint_s)
        return (cost.build_s + epochs * epoch_s + self.test_images * cost.eval_s_per_image
                + cost.final_s)


def cost_key(flat: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The fields of a flat config that decide what one trial costs."""
    key = {k: str(v) for k, v in flat.items() if k not in COST_NEUTRAL}
    key["lambda_au"] = str(float(flat.get("lambda_au", 0.0)) > 0)
    return tuple(sorted(key.items()))


def _sync(device: Any) -> None:
    import torch

    torch.cuda.synchronize(device) if device.type == "cuda" else None


@dataclass(frozen=True)
class Timing:
    """How much of each arm ``measure_arms`` times: all of it for ``--estimate``, less for the
    prediction a sweep records at its start (``QUICK``), which a short sweep waits for."""

    steps: int = TIMED_STEPS
    max_arms: int | None = None
    """Time only the references and the arms with most trials, up to this many; the others
    cost the mean of the timed ones (a 22-arm grid would otherwise time 22)."""
    eval_batches: int | None = None
    """Validation batches timed per arm (None: the whole split)."""
    share_final: bool = False
    """Time the end-of-trial work (XAI metrics, model save) once per ``final_key``: it does not
    depend on λ or the aligned layers."""


QUICK = Timing(steps=3, max_arms=2, eval_batches=2, share_final=True)


def final_key(flat: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The fields of a flat config that decide the end-of-trial work's cost."""
    return tuple((k, v) for k, v in cost_key(flat) if k not in FINAL_NEUTRAL)


def measure(flat: Mapping[str, Any], cache_dir: str | None, steps: int = TIMED_STEPS,
            threads: int | None = None, eval_batches: int | None = None,
            final_s: float | None = None) -> tuple[ArmCost, TrialShape]:
    """Build one arm, time ``steps`` training batches (loading included), a validation pass
    (its first ``eval_batches``) and, unless ``final_s`` already says what it costs, the
    end-of-trial work; save its checkpoints to a temporary folder to learn their sizes."""
    import torch

    from fer_core import metric_names as mn
    from fer_core.config import ExperimentConfig
    from fer_core.engine import Trainer, flat_eval

    if threads:
        torch.set_num_threads(threads)
    cfg = ExperimentConfig.from_flat(dict(flat))
    began = time.perf_counter()
    trainer = Trainer(cfg, progress=False, cache_dir=cache_dir)
    build_s = time.perf_counter() - began
    loader = trainer.loaders["train"]
    batches = iter(loader)
    trainer.model.train()
    seconds = []
    for i in range(WARMUP_STEPS + steps):
        _sync(trainer.device)
        began = time.perf_counter()
        try:
            batch = next(batches)
        except StopIteration:  # a split smaller than the steps timed: go round again
            batches = iter(loader)
            batch = next(batches)
        trainer.train_step(batch)
        _sync(trainer.device)
        if i >= WARMUP_STEPS:
            seconds.append(time.perf_counter() - began)
    # The median: one step slowed by another process (a 2-step mean was 40 % high once) does
    # not set the price of every step of the sweep.
    step_s = statistics.median(seconds)
    val = trainer.loaders["val"]
    trainer.evaluate("val", max_batches=1)  # untimed: the first batch was 12 ms/img, later 9
    _sync(trainer.device)
    began = time.perf_counter()
    result = trainer.evaluate("val", max_batches=eval_batches)
    _sync(trainer.device)
    seen = len(val.dataset) if eval_batches is None else min(
        len(val.dataset), eval_batches * (val.batch_size or 1))
    eval_s_per_image = (time.perf_counter() - began) / max(seen, 1)
    # The test pass costs its images at eval_s_per_image (TrialShape); the rest of the end of
    # a trial is the XAI metrics and the MLflow model, timed here.
    explain_s = 0.0
    with tempfile.TemporaryDirectory(prefix="fer-estimate-") as tmp:
        if final_s is None:
            import mlflow.pytorch  # noqa: F401 - a trial's worker imports it once, not per trial

            began = time.perf_counter()
            trainer.xai_metrics(trainer.model)
            _sync(trainer.device)
            save_selected_model(trainer, Path(tmp) / "mlflow_model")
            explain_s = time.perf_counter() - began
        began = time.perf_counter()
        running = Path(trainer.save_checkpoint(tmp)).stat().st_size
        checkpoint_s = time.perf_counter() - began
        # A finished trial's checkpoint: what the trainable writes after the test (the test
        # result has the validation result's keys and size).
        trainer.epoch = cfg.train.epochs
        trainer.final = flat_eval(result, mn.TEST, trainer.model.headline_layer)
        final = Path(trainer.save_checkpoint(tmp, selected_weights=False)).stat().st_size
    if final_s is None:
        final_s = explain_s + checkpoint_s + TRIAL_OVERHEAD_S
    weights = sum(t.numel() * t.element_size() for t in trainer.model.state_dict().values())
    cap = cfg.train.max_train_batches or len(loader)
    shape = TrialShape(min(cap, len(loader)), len(val.dataset),
                       len(trainer.loaders["test"].dataset), cfg.train.epochs)
    cost = ArmCost(step_s, eval_s_per_image, build_s, checkpoint_s, final_s, weights, running,
                   final, str(trainer.device))
    return cost, shape


def save_selected_model(trainer: Any, folder: Path) -> None:
    """The weights a finished trial writes besides its checkpoint: the MLflow PyTorch model
    (``tuner.trainable.log_selected_model``)."""
    import copy

    from fer_core import export

    export.save_mlflow_model(copy.deepcopy(trainer.model), trainer.cfg.to_flat(),
                             trainer.cfg.data.img_size, folder / "model")


@dataclass(frozen=True)
class Arm:
    """One cost arm: a representative flat config and the trials that share its cost."""

    config: dict[str, Any]
    trials: float
    """Expected trials of this arm (a searched space spreads its samples evenly)."""
    reference: bool
    """Reference trials always run to the end (ASHA never stops them)."""


def arms(resolved: ResolvedSweep) -> list[Arm]:
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
    """Expected under the sweep's scheduler (ASHA simulated by ``tuner.asha``); None in the
    ``estimate.json`` of a sweep started before it existed."""
    measured_s: float | None = None
    """Seconds the measuring took."""
    beside_trials: bool = False
    """A sweep timed it beside its first trials, on a core they left free
    (``tuner.pricing``); else before them, the trials waiting ``measured_s``."""
    trial_hours_low: float | None = None
    trial_hours_high: float | None = None
    """The central 90 % of the trial-hours over simulated draws of which trials ASHA stops
    (``tuner.asha.epochs_interval``); equal to the expectation without ASHA."""

    def save(self, folder: StoragePath) -> None:
        (folder / ESTIMATE_FILE).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, folder: StoragePath) -> Prediction | None:
        path = folder / ESTIMATE_FILE
        data = json.loads(path.read_text()) if path.exists() else None
        return cls(**{**data, "lines": tuple(data["lines"])}) if data else None

    def against(self, actual_hours: float, trials_run: float | None = None) -> str:
        """The closing summary's line: predicted against actual trial-hours. A sweep that ran
        ``trials_run`` of its predicted trials (interrupted, budget-stopped) is compared with
        that share of the prediction: like with like."""
        if actual_hours <= 0:
            return f"predicted {self.trial_hours:.3f} trial-hours; no trial time recorded"
        share = 1.0 if not trials_run or trials_run >= self.trials else trials_run / self.trials
        expected = (self.trial_hours_expected or self.trial_hours) * share
        off = 100.0 * (expected - actual_hours) / actual_hours
        if self.trial_hours_low is not None and self.trial_hours_high is not None:
            low, high = self.trial_hours_low * share, self.trial_hours_high * share
            inside = "inside" if low <= actual_hours <= high else "OUTSIDE"
            span = f" (90 % of ASHA draws {low:.3f}–{high:.3f}: actual {inside})"
        else:
            span = (f" (range {self.trial_hours_asha:.3f}–{self.trial_hours:.3f})"
                    if self.trial_hours_asha < self.trial_hours else "")
        part = "" if share == 1.0 else f" for the {trials_run:g} of {self.trials:g} trials run"
        return (f"trial-hours: predicted {expected:.3f}{span}{part}, actual "
                f"{actual_hours:.3f} ({off:+.0f} %)")


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


def measure_arms(resolved: ResolvedSweep, cache_dir: str | None, address: str | None,
                 timing: Timing = Timing()) -> list[tuple[Arm, ArmCost, TrialShape]]:
    """Time the arms (as much as ``timing`` says) where a trial would run: one Ray task with
    its resources on a cluster, else this process (no GPU unless the trial asks for one)."""
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
                finals.get(final_key(flat)))
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


def predict(resolved: ResolvedSweep, cache_dir: str | None, address: str | None = None,
            timing: Timing = Timing()) -> Prediction:
    """Measure the arms (as much as ``timing`` says) and add up the sweep's price."""
    import torch

    settings, space = resolved.settings, resolved.space
    threads = torch.get_num_threads()
    began = time.perf_counter()
    measured = measure_arms(resolved, cache_dir, address, timing)
    measured_s = time.perf_counter() - began
    torch.set_num_threads(threads)  # measure() set a trial's count; the driver gets its own
    asha = settings.scheduler == "asha"
    lines = [f"{'arm':<44} {'trials':>6} {'step s':>7} {'eval ms/img':>11} {'trial min':>9} "
             f"{'ckpt MB':>8}"]
    durations: list[float] = []
    shared: list[tuple[float, float]] = []  # (expected trials, seconds) of spread samples
    hours = hours_asha = hours_expected = disk = trials = hours_low = hours_high = 0.0
    searched = round(sum(arm.trials for arm, _, _ in measured if not arm.reference))
    references = round(sum(arm.trials for arm, _, _ in measured if arm.reference))
    for arm, cost, shape in measured:
        full = shape.seconds(cost)
        grace = min(space.grace_period, shape.epochs)
        early = expected = low = high = full
        if asha and not arm.reference:
            early = shape.seconds(cost, asha_epochs(shape.epochs, grace, space.reduction_factor))
            expected = shape.seconds(cost, expected_epochs(
                shape.epochs, grace, space.reduction_factor, searched, references))
            # One sweep is one draw: its searched trials stop together as the draw says.
            low, high = (shape.seconds(cost, e) for e in epochs_interval(
                shape.epochs, grace, space.reduction_factor, searched, references))
        hours_low += arm.trials * low / 3600
        hours_high += arm.trials * high / 3600
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
    gpu = settings.resources_gpu
    per_trial, unit = (gpu, "GPU") if gpu > 0 else (settings.resources_cpu, "CPU")
    device = measured[0][1].device if measured else "cpu"
    return Prediction(trials, hours, hours_asha, hours * per_trial, unit,
                      wall_clock_s(durations, settings.max_concurrent) / 3600, disk, device,
                      tuple(lines), hours_expected, measured_s,
                      trial_hours_low=hours_low, trial_hours_high=hours_high)


def render(resolved: ResolvedSweep, p: Prediction, steps: int) -> str:
    """The ``--estimate`` report; its last line is ``estimated_trial_hours=<x>``."""
    s, space = resolved.settings, resolved.space
    out = [f"estimate for space {space.name} on {p.device} ({s.resources_cpu:g} CPU, "
           f"{s.resources_gpu:g} GPU per trial): {WARMUP_STEPS}+{steps} training steps (their "
           "median) and one validation pass timed per arm; nothing was started", *p.lines,
           f"trials:        {p.trials:g} ({s.num_configs} configurations × {s.seeds} seeds; "
           "a grid runs its whole grid)",
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
        if p.trial_hours_low is not None:
            out.append(f"interval:      {p.trial_hours_low:.3f}–{p.trial_hours_high:.3f} "
                       "trial-hours holds 90 % of the simulated draws of which trials stop")
    else:
        out.append(f"ASHA:          not used (scheduler {s.scheduler}); --scheduler asha "
                   "could stop weak trials early")
    out.append(f"disk:          {p.disk_bytes / MB:.0f} MB (one kept checkpoint per trial + "
               f"{WEIGHT_COPIES_PER_FINISHED_TRIAL} × its selected weights as an MLflow model)")
    out.append(f"estimated_trial_hours={p.trial_hours:.4f}")
    return "\n".join(out)


def run_estimate(resolved: ResolvedSweep, cache_dir: str | None, address: str | None,
                 steps: int = TIMED_STEPS) -> str:
    """``--estimate``: prepare the data (into ``cache_dir``, else a temporary folder removed
    afterwards), measure, and return the report. No MLflow run, no sweep folder, no trial."""
    import ray

    from fer_core.config import ExperimentConfig
    from tuner.provenance import prepare_data

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
