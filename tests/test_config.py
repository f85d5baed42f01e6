import pickle
from dataclasses import FrozenInstanceError

import pytest

from fer_core import CLASSES, EXPRESSION_CLASSES, NEUTRAL
from fer_core.config import ExperimentConfig, parse_layers, parse_overrides
from fer_core.registry import Registry


def test_classes_in_protocol_order():
    assert CLASSES == ("Neutral", "Happiness", "Surprise", "Fear", "Anger", "Disgust", "Sadness")
    assert CLASSES[NEUTRAL] == "Neutral" and NEUTRAL not in EXPRESSION_CLASSES
    assert len(EXPRESSION_CLASSES) == 6


def test_flat_round_trip_and_string_coercion():
    cfg = ExperimentConfig()
    assert ExperimentConfig.from_flat(cfg.to_flat()) == cfg
    flat = {"lambda_au": "4", "layers": "5+4", "nesterov": "false", "pretrained": "none",
            "epochs": "7", "lr": 1}
    got = ExperimentConfig.from_flat(flat)
    assert got.align.lambda_au == 4.0 and got.align.layers == (5, 4)
    assert got.optim.nesterov is False and got.model.pretrained is None
    assert got.train.epochs == 7 and isinstance(got.optim.lr, float)
    assert got.to_flat()["layers"] == "5+4"


@pytest.mark.parametrize(
    "flat, message",
    [
        ({"lambda_au": -1}, "lambda_au"),
        ({"lambda_au": float("nan")}, "lambda_au"),
        ({"layers": "5+5"}, "once"),
        ({"layers": "0"}, "layers"),
        ({"layers": "a+b"}, "layers"),
        ({"layer_reduce": "max"}, "mean, sum"),
        ({"au_variant": "x"}, "reference"),
        ({"epochs": "two"}, "int"),
        ({"output_stride": 4}, "8, 16 or 32"),
        ({"nesterov": "maybe"}, "true or false"),
        ({"shortcut": 1.5}, "shortcut"),
        ({"shortcut_images": -1}, "shortcut_images=-1: use 0"),
        # the square exists only in synthetic images: refused, with both ways out named
        ({"dataset": "rafdb", "shortcut_images": 4},
         "shortcut_images=4: the shortcut cue exists in the synthetic dataset only, not in "
         "'rafdb'; set shortcut_images=0 or dataset=synthetic"),
        # CAM methods' own fields, validated by each method's dataclass
        ({"wildcat_kmax": 2}, "wildcat_kmax=2.0: use a value in"),
        ({"apvit_k": "0"}, "apvit_k"),
        ({"cutmix_beta": 0}, "positive Beta"),
        ({"adl_layers": "a+b"}, "layer numbers"),
    ],
)
def test_bad_values_name_the_field_and_the_fix(flat, message):
    with pytest.raises(ValueError, match=message):
        ExperimentConfig.from_flat(flat)


def test_shortcut_images_is_a_count_read_from_text_and_off_by_default():
    assert ExperimentConfig().train.shortcut_images == 0
    assert ExperimentConfig.from_flat({"shortcut_images": "48"}).train.shortcut_images == 48
    # off, it asks nothing of the dataset
    assert ExperimentConfig.from_flat({"dataset": "rafdb"}).data.dataset == "rafdb"


def test_method_fields_are_flat_typed_and_pickle():
    """Method hyperparameters are flat fields like any other: strings from ``--set``/MLflow are
    converted, layer sets normalised, and a config survives pickling (Ray ships it to workers)
    although ``MethodConfig`` is built from the method registry at run time."""
    from fer_core.config import MethodConfig

    cfg = ExperimentConfig.from_flat({"method": "adl", "adl_layers": "5,4", "apvit_depth": "3"})
    assert isinstance(cfg.method, MethodConfig) and cfg.method.adl_layers == (5, 4)
    assert cfg.method.apvit_depth == 3 and cfg.to_flat()["adl_layers"] == "5+4"
    assert cfg.method.params_of().adl_layers == (5, 4)  # the selected method's own dataclass
    assert pickle.loads(pickle.dumps(cfg)) == cfg
    with pytest.raises(FrozenInstanceError):
        cfg.method.adl_layers = (1,)


def test_unknown_field_lists_valid_fields():
    with pytest.raises(ValueError, match="lambda_au"):
        ExperimentConfig.from_flat({"lamda": 1})
    assert ExperimentConfig.from_flat({"lamda": 1}, strict=False) == ExperimentConfig()


def test_replace_revalidates():
    cfg = ExperimentConfig().replace(lambda_au=2.5)
    assert cfg.align.lambda_au == 2.5
    with pytest.raises(ValueError):
        cfg.replace(lambda_au=-3)


def test_overrides_and_layers_parsing():
    assert parse_overrides(["a=1", " layers = 5+4 "]) == {"a": "1", "layers": "5+4"}
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["lambda_au"])
    assert parse_layers("5,4") == (5, 4) and parse_layers(3) == (3,) and parse_layers([2]) == (2,)


def test_registry_lists_valid_names():
    reg: Registry = Registry("widget")
    reg.register("a")(1)
    with pytest.raises(ValueError, match="already"):
        reg.register("a")(2)
    with pytest.raises(KeyError, match="valid names: a"):
        reg.get("b")
    assert reg.names() == ["a"] and "a" in reg and len(reg) == 1
