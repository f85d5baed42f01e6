"""Experiment configuration: frozen, validated dataclasses with a flat view for Tune and MLflow.

Every field name is unique across sections, so the flat view is simply ``{field: value}`` and a
user can override any field with ``--set name=value`` without knowing which section holds it.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import MISSING, dataclass, field, fields, make_dataclass
from typing import TYPE_CHECKING, Any, get_type_hints

from fer_core.cli import UserError

LAYER_REDUCES = ("mean", "sum")
AU_VARIANTS = ("reference", "paper", "generic")
DEVICES = ("auto", "cpu", "cuda")
AMP_DTYPES = ("float16", "bfloat16")  # float16 needs gradient scaling, bfloat16 does not


def _fail(name: str, value: Any, fix: str) -> None:
    raise UserError(f"invalid config value {name}={value!r}: {fix}")


def fail(name: str, value: Any, fix: str) -> None:
    """Raise the config's :class:`~fer_core.cli.UserError` for ``name=value`` with ``fix``
    (for CAM methods' own hyperparameter dataclasses, so every config error reads alike)."""
    _fail(name, value, fix)


def check_fractions(params: Any, *names: str) -> None:
    """Validation helper for ``Params.__post_init__``: each named field lies in ``[0, 1]``."""
    for name in names:
        if not 0.0 <= getattr(params, name) <= 1.0:
            fail(name, getattr(params, name), "use a value in [0, 1]")


def parse_layers(value: Any) -> tuple[int, ...]:
    """Accept ``(5, 4)``, ``[5, 4]``, ``"5+4"``, ``"5,4"`` or ``5``; keep the given order."""
    if isinstance(value, str):
        parts = [p for p in value.replace(",", "+").split("+") if p.strip()]
        try:
            return tuple(int(p) for p in parts)
        except ValueError:
            _fail("layers", value, "use layer numbers joined by '+', e.g. '5+4'")
    if isinstance(value, int):
        return (value,)
    return tuple(int(v) for v in value)


def format_layers(layers: tuple[int, ...]) -> str:
    """``(5, 4)`` -> ``'5+4'``, the form of MLflow params and ``--set layers=``."""
    return "+".join(str(v) for v in layers)


@dataclass(frozen=True)
class DataConfig:
    """Which data, at which size, and how validation is split off (docs/method.md §9)."""

    dataset: str = "synthetic"
    data_root: str | None = None
    img_size: int = 64
    val_fraction: float = 0.1
    val_from_test: bool = False  # the reference protocol: validate on the test split
    split_seed: int = 0  # fixed apart from the trial seed so paired arms share one val split
    synthetic_n: int = 1400  # synthetic train images (val/test get a fifth each)
    shortcut: float = 0.0  # synthetic only: probability of a label cue outside the face
    synthetic_intensity: float = 0.3  # synthetic only: weakest expression (1 = full strength)
    # False trains on the evaluation transform: the shortcut study (docs/method.md §7.2) needs a
    # cue that the crop, flip and colour jitter neither cut off, move nor recolour.
    augment: bool = True
    num_workers: int = 0

    def __post_init__(self) -> None:
        if not 16 <= self.img_size <= 1024:
            _fail("img_size", self.img_size, "use an image side between 16 and 1024 pixels")
        if not 0.0 <= self.val_fraction < 1.0:
            _fail("val_fraction", self.val_fraction, "use a fraction in [0, 1)")
        if not 0.0 <= self.shortcut <= 1.0:
            _fail("shortcut", self.shortcut, "use a probability in [0, 1]")
        if not 0.0 <= self.synthetic_intensity <= 1.0:
            _fail("synthetic_intensity", self.synthetic_intensity,
                  "use the weakest expression strength in [0, 1] (strengths are drawn up to 1)")
        if self.synthetic_n < 7:
            _fail("synthetic_n", self.synthetic_n, "use at least 7 images (one per class)")
        if self.num_workers < 0:
            _fail("num_workers", self.num_workers, "use 0 (main process) or more workers")


@dataclass(frozen=True)
class ModelConfig:
    """The timm backbone, its weights and its output stride (docs/method.md §5)."""

    backbone: str = "resnet18"
    pretrained: str | None = None  # local weight file, or "imagenet" (timm's tag via the hub cache)
    output_stride: int = 32

    def __post_init__(self) -> None:
        if self.output_stride not in (8, 16, 32):
            _fail("output_stride", self.output_stride, "use 8, 16 or 32")


def _check_method(self: Any) -> None:
    """``MethodConfig.__post_init__``: every method's own dataclass validates (and normalises,
    e.g. layer strings to tuples) its fields, whichever method is selected."""
    for params in _method_params_classes():
        checked = params(**{f.name: getattr(self, f.name) for f in fields(params)})
        for f in fields(params):
            object.__setattr__(self, f.name, getattr(checked, f.name))


def _params_of(self: Any, method: str | None = None) -> Any:
    """The hyperparameter dataclass of ``method`` (default: the selected one), filled in."""
    from fer_core.methods import discover

    params = discover().get(method or self.method).params
    return params(**{f.name: getattr(self, f.name) for f in fields(params)})


def _method_params_classes() -> list[type]:
    from fer_core.methods import discover

    return list(dict.fromkeys(discover().param_classes().values()))


_METHOD_CONFIG: list[type] = []
_BUILDING_METHOD_CONFIG: list[bool] = []


def _method_config_class() -> type:
    """Build ``MethodConfig`` on first use: ``method`` plus every registered CAM method's
    hyperparameters as flat fields (names and defaults from each method's own dataclass).

    Built lazily because it reads every method's declaration (``fer_core/methods/``), whose
    modules import this one for their checks.
    """
    if _METHOD_CONFIG:
        return _METHOD_CONFIG[0]
    if _BUILDING_METHOD_CONFIG:
        raise ImportError("MethodConfig was asked for while the CAM methods were being "
                          "discovered; method modules must import it only for type hints")
    _BUILDING_METHOD_CONFIG.append(True)
    try:
        from fer_core.methods import params_fields

        spec: list[tuple[str, Any, Any]] = [("method", str, field(default="cam"))]
        for name, (_, f, hint) in params_fields().items():
            default = (field(default=f.default) if f.default is not MISSING
                       else field(default_factory=f.default_factory))
            spec.append((name, hint, default))
    finally:
        _BUILDING_METHOD_CONFIG.clear()
    klass = make_dataclass("MethodConfig", spec, frozen=True, namespace={
        "__post_init__": _check_method, "params_of": _params_of,
        "__doc__": "The CAM method (``method``) and every registered method's own "
                   "hyperparameters, flat (docs/method.md §6 defaults; fer_core/methods/)."})
    klass.__module__ = __name__  # pickles by reference, found again through __getattr__
    _METHOD_CONFIG.append(klass)
    return klass


if TYPE_CHECKING:  # at runtime the module's __getattr__ serves the built class
    MethodConfig: type


def __getattr__(name: str) -> Any:
    if name == "MethodConfig":
        return _method_config_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class AlignConfig:
    """The AU alignment term: λ · (1 − cos(T_l, A)) over the chosen layers."""

    lambda_au: float = 0.0
    layers: tuple[int, ...] = (5,)
    layer_reduce: str = "mean"
    au_variant: str = "reference"

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", parse_layers(self.layers))
        if not (math.isfinite(self.lambda_au) and self.lambda_au >= 0):
            _fail("lambda_au", self.lambda_au, "λ must be a finite number ≥ 0 (0 = no AU guidance)")
        if not self.layers or any(v < 1 for v in self.layers):
            _fail("layers", self.layers, "use one or more layer numbers ≥ 1, e.g. '5' or '5+4'")
        if len(set(self.layers)) != len(self.layers):
            _fail("layers", self.layers, "list each layer once")
        if self.layer_reduce not in LAYER_REDUCES:
            _fail("layer_reduce", self.layer_reduce, f"use one of {', '.join(LAYER_REDUCES)}")
        if self.au_variant not in AU_VARIANTS:
            _fail("au_variant", self.au_variant, f"use one of {', '.join(AU_VARIANTS)}")


@dataclass(frozen=True)
class OptimConfig:
    """SGD with a step schedule (docs/method.md §8)."""

    lr: float = 0.002
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    lr_step: int = 4
    lr_gamma: float = 0.9

    def __post_init__(self) -> None:
        if not self.lr > 0:
            _fail("lr", self.lr, "use a positive learning rate")
        if self.weight_decay < 0 or not 0 <= self.momentum < 1:
            _fail("weight_decay/momentum", (self.weight_decay, self.momentum),
                  "use weight_decay ≥ 0 and momentum in [0, 1)")
        if self.lr_step < 1 or not 0 < self.lr_gamma <= 1:
            _fail("lr_step/lr_gamma", (self.lr_step, self.lr_gamma),
                  "use lr_step ≥ 1 and lr_gamma in (0, 1]")


@dataclass(frozen=True)
class TrainConfig:
    """The training loop: epochs, batch, seed, device and the GPU options (docs/method.md §8)."""

    epochs: int = 4
    batch_size: int = 32
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # mixed precision on CUDA only; ignored on CPU
    amp_dtype: str = "float16"
    channels_last: bool = False  # NHWC activations: faster convolutions on tensor cores
    compile: bool = False  # torch.compile the training/validation forward pass
    checkpoint_every: int = 1  # checkpoint every K epochs (and always after the last)
    max_train_batches: int = 0  # 0 = whole epoch; > 0 caps each epoch (smoke tests)
    # Test images for the end-of-run fer_core.xai metrics; 0 skips them (~1 s of CPU per image at
    # the laptop sizes, so the sweeps' pinned sizes turn them on, not every unit-test training).
    xai_images: int = 0
    # Test images with the shortcut square painted in, scored by fer_core.xai.shortcut at the end
    # of the run (docs/method.md §7.2); 0 skips them. Only synthetic data has the square.
    shortcut_images: int = 0
    fail_at_epoch: int = -1  # fault injection: raise once at this epoch (tests of retries)

    def __post_init__(self) -> None:
        if self.epochs < 1:
            _fail("epochs", self.epochs, "train for at least 1 epoch")
        if self.batch_size < 1:
            _fail("batch_size", self.batch_size, "use a batch size ≥ 1")
        if self.device not in DEVICES:
            _fail("device", self.device, f"use one of {', '.join(DEVICES)}")
        if self.max_train_batches < 0:
            _fail("max_train_batches", self.max_train_batches, "use 0 (all) or a positive cap")
        if self.xai_images < 0:
            _fail("xai_images", self.xai_images, "use 0 (skip the xai metrics) or a positive count")
        if self.shortcut_images < 0:
            _fail("shortcut_images", self.shortcut_images,
                  "use 0 (skip the shortcut metrics) or a positive count")
        for name in ("amp", "channels_last", "compile"):
            if not isinstance(getattr(self, name), bool):
                _fail(name, getattr(self, name), "use true or false")
        if self.amp_dtype not in AMP_DTYPES:
            _fail("amp_dtype", self.amp_dtype, f"use one of {', '.join(AMP_DTYPES)}")
        if isinstance(self.checkpoint_every, bool) or not (
            isinstance(self.checkpoint_every, int) and self.checkpoint_every >= 1
        ):
            _fail("checkpoint_every", self.checkpoint_every,
                  "use a whole number of epochs ≥ 1 (1 = every epoch)")


LIGHT_SECTIONS: dict[str, type] = {
    "data": DataConfig, "model": ModelConfig, "align": AlignConfig, "optim": OptimConfig,
    "train": TrainConfig,
}
"""The sections whose class needs no CAM method discovery (all but ``method``)."""


def sections() -> dict[str, type]:
    """Section name → its dataclass (``method``'s is built on first use, see MethodConfig)."""
    return {"data": DataConfig, "model": ModelConfig, "method": _method_config_class(),
            **{name: LIGHT_SECTIONS[name] for name in ("align", "optim", "train")}}


def _build_section(klass: type, flat: dict[str, Any]) -> Any:
    """``klass`` from the keys of ``flat`` that are its fields, converted to their types."""
    hints = get_type_hints(klass)
    return klass(**{k: coerce(k, v, hints[k]) for k, v in flat.items() if k in hints})


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment: every section, frozen and validated. Field names are unique across
    sections, so ``to_flat``/``from_flat`` give the flat view that Tune samples, MLflow logs and
    ``--set name=value`` overrides."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    # A MethodConfig: its class is built from the method registry on first use.
    method: Any = field(default_factory=lambda: _method_config_class()())
    align: AlignConfig = field(default_factory=AlignConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        # Checked across sections: the square the shortcut metrics paint exists only in the
        # synthetic generator (its class colours and spots), so on real faces they mean nothing.
        if self.train.shortcut_images > 0 and self.data.dataset != "synthetic":
            _fail("shortcut_images", self.train.shortcut_images,
                  f"the shortcut cue exists in the synthetic dataset only, not in "
                  f"{self.data.dataset!r}; set shortcut_images=0 or dataset=synthetic")

    def to_flat(self) -> dict[str, Any]:
        """``{field: value}`` with tuples as ``'5+4'`` strings (MLflow params, Tune configs)."""
        flat: dict[str, Any] = {}
        for section in sections():
            for f in fields(getattr(self, section)):
                value = getattr(getattr(self, section), f.name)
                flat[f.name] = format_layers(value) if isinstance(value, tuple) else value
        return flat

    @classmethod
    def from_flat(cls, flat: dict[str, Any], strict: bool = True) -> ExperimentConfig:
        """Build from ``{field: value}``; values given as strings are converted to the field type.

        With ``strict`` unknown keys raise (listing close matches); otherwise they are ignored,
        which lets a Tune config carry keys of its own.
        """
        # The sections other than the method's first: their values are checked without
        # discovering the CAM methods (which imports torch), so a CLI reports them at once.
        built = {name: _build_section(klass, flat) for name, klass in LIGHT_SECTIONS.items()}
        owner = field_owners()
        unknown = [k for k in flat if k not in owner]
        if unknown and strict:
            hints = "".join(f" ({k!r}: did you mean {', '.join(close)}?)" for k in unknown
                            if (close := difflib.get_close_matches(k, list(owner), n=3)))
            raise UserError(f"unknown config field(s) {unknown}{hints}; "
                            f"valid fields: {sorted(owner)}")
        built["method"] = _build_section(_method_config_class(), flat)
        return cls(**{name: built[name] for name in sections()})

    def replace(self, **flat: Any) -> ExperimentConfig:
        """A copy with some flat fields changed (validated again)."""
        return ExperimentConfig.from_flat({**self.to_flat(), **flat})


def field_owners() -> dict[str, tuple[str, Any]]:
    """Flat field name → (section, type hint)."""
    owner: dict[str, tuple[str, Any]] = {}
    for section, klass in sections().items():
        for name, hint in get_type_hints(klass).items():
            owner[name] = (section, hint)
    return owner


def coerce(name: str, value: Any, hint: Any) -> Any:
    """Convert a CLI/MLflow string into the field's type; other values pass through."""
    if not isinstance(value, str):
        if hint is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value
    text = value.strip()
    if hint is bool:
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        _fail(name, value, "use true or false")
    if hint == (str | None) and text.lower() in ("", "none", "null"):
        return None
    try:
        if hint is int:
            return int(text)
        if hint is float:
            return float(text)
    except ValueError:
        _fail(name, value, f"expected a {hint.__name__}")
    return text  # str, layer tuples (parsed in __post_init__)


def parse_overrides(items: list[str] | None) -> dict[str, str]:
    """``["lambda_au=4", "layers=5+4"]`` → ``{"lambda_au": "4", "layers": "5+4"}``.

    Only the syntax is checked here; ``ExperimentConfig.from_flat`` checks names and values.
    """
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"bad override {item!r}: write it as key=value, e.g. lambda_au=4")
        out[key.strip()] = value.strip()
    return out


def default_flat() -> dict[str, Any]:
    """The flat view of the default experiment."""
    return ExperimentConfig().to_flat()


__all__ = [
    "AlignConfig", "DataConfig", "ExperimentConfig", "MethodConfig", "ModelConfig", "OptimConfig",
    "TrainConfig", "parse_layers", "format_layers", "default_flat", "field_owners",
    "parse_overrides",
]
