"""Mixed precision, channels-last, torch.compile and the small checkpoint.

The ``gpu`` tests run every method under autocast with gradient scaling on a real CUDA device
(they are skipped where none is visible); the CPU tests check that the options validate and that
channels-last and compile train on CPU.
"""

import pytest
import torch

from fer_core import checkpoint as ckpt
from fer_core.cams import METHODS
from fer_core.config import ExperimentConfig
from fer_core.engine import Callback, Trainer
from search_spaces.methods import OWN_NETWORK

TINY = dict(synthetic_n=14, img_size=32, batch_size=7, epochs=2, lambda_au=2.0, layers="5",
            max_train_batches=1)
METHOD_SIZES = {"apvit": 64, "tscam": 64}  # token models need a larger input


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_CACHE", str(tmp_path / "cache"))


def trainer(**flat) -> Trainer:
    return Trainer(ExperimentConfig.from_flat({**TINY, **flat}), progress=False)


@pytest.mark.parametrize("key, value, hint", [
    ("amp_dtype", "float8", "float16, bfloat16"),
    ("channels_last", "maybe", "true or false"),
    ("compile", "sometimes", "true or false"),
    ("checkpoint_every", "0", "≥ 1"),
])
def test_cost_options_are_validated(key, value, hint):
    with pytest.raises(ValueError, match=rf"{key}=.*{hint}"):
        ExperimentConfig.from_flat({key: value})


def test_non_bool_flags_are_refused():
    with pytest.raises(ValueError, match="channels_last=2"):
        ExperimentConfig.from_flat({"channels_last": 2})


def test_channels_last_trains_on_cpu():
    t = trainer(channels_last=True, device="cpu")
    conv = next(p for p in t.model.parameters() if p.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last)
    assert t.to_input(torch.zeros(2, 3, 8, 8)).is_contiguous(memory_format=torch.channels_last)
    final = t.fit()
    assert 0.0 <= final["test_cl"] <= 100.0
    assert all(torch.isfinite(p).all() for p in t.model.parameters())


@pytest.mark.slow(reason="torch.compile on the CPU")
def test_compile_trains_on_cpu_and_checkpoints_plain_keys(tmp_path):
    t = trainer(compile=True, device="cpu", epochs=1)
    assert t.forward is not t.model
    final = t.fit()
    assert 0.0 <= final["test_cl"] <= 100.0
    state = ckpt.load(t.save_checkpoint(str(tmp_path)))  # tested: the selected weights + result
    assert state["best_state"] and not any(k.startswith("_orig_mod.") for k in state["best_state"])
    assert state["final"] == final


def test_checkpoint_holds_best_weights_once_and_resume_restores_them(tmp_path):
    t = trainer(device="cpu", epochs=3)
    t.run_epoch(1)
    assert t.best_epoch == t.epoch == 1
    path = t.save_checkpoint(str(tmp_path / "a"))
    state = ckpt.load(path)
    assert state["best_state"] is None and state["best_is_model"]
    resumed = trainer(device="cpu", epochs=3)
    resumed.load_checkpoint(path)
    for key, value in t.best_state.items():
        assert torch.equal(resumed.best_state[key], value)
    # An older best epoch is stored: it differs from the current weights.
    t.epoch = 2
    with torch.no_grad():
        next(t.model.parameters()).add_(1.0)
    state = ckpt.load(t.save_checkpoint(str(tmp_path / "b")))
    assert state["best_state"] is not None and not state["best_is_model"]


class FitEnds(Callback):
    def __init__(self):
        self.calls = 0

    def on_fit_end(self, trainer, final):
        self.calls += 1


def test_a_trained_run_keeps_only_the_selected_weights_and_retests_them(tmp_path):
    t = trainer(device="cpu", epochs=1)
    t.run_epoch(1)  # trained, not tested yet (fer_core.train checkpoints here)
    path = t.save_checkpoint(str(tmp_path / "trained"))
    state = ckpt.load(path)
    assert state["finished"] and state["final"] is None and state["best_state"]
    assert "model" not in state and "optimizer" not in state
    restored = trainer(device="cpu", epochs=1)
    restored.load_checkpoint(path)
    ends = FitEnds()
    restored.callbacks.append(ends)
    final = restored.fit()  # no epoch left: the selected model is tested
    assert ends.calls == 1 and restored.final_matrices and final == restored.final
    longer = trainer(device="cpu", epochs=2)
    with pytest.raises(ValueError, match="finished 1-epoch run.*epochs=2"):
        longer.load_checkpoint(path)


def test_a_tested_run_keeps_its_result_and_drops_the_weights_when_asked(tmp_path):
    t = trainer(device="cpu", epochs=1)
    final = t.fit()
    kept = ckpt.load(t.save_checkpoint(str(tmp_path / "kept")))  # the default: weights kept
    assert kept["final"] == final and kept["best_state"]
    path = t.save_checkpoint(str(tmp_path / "done"), selected_weights=False)
    state = ckpt.load(path)
    assert state["finished"] and state["final"] == final
    assert {"best_state", "model", "optimizer"}.isdisjoint(state)
    # A few kB (config, history, RNG, result) against ~45 MB of resnet18 weights.
    assert (tmp_path / "done" / ckpt.CHECKPOINT_FILE).stat().st_size < 100_000
    restored = trainer(device="cpu", epochs=1)
    restored.load_checkpoint(path)
    ends = FitEnds()
    restored.callbacks.append(ends)
    assert restored.fit() == final  # the stored result: nothing trained or tested again
    assert ends.calls == 0 and restored.final_matrices == {} and restored.history == t.history


def test_checkpoint_every_k_epochs_and_always_the_last():
    t = trainer(device="cpu", epochs=7, checkpoint_every=3)
    assert [e for e in range(1, 8) if t.checkpoint_due(e)] == [3, 6, 7]


def _run_on_cuda(method: str, **flat) -> Trainer:
    size = METHOD_SIZES.get(method, TINY["img_size"])
    network = {**OWN_NETWORK.get(method, {}), "layers": OWN_NETWORK.get(method, {}).get(
        "layers", TINY["layers"])}
    t = trainer(method=method, img_size=size, device="cuda", amp=True, epochs=1,
                **network, **flat)
    final = t.fit()
    assert 0.0 <= final["test_cl"] <= 100.0
    assert all(torch.isfinite(p).all() for p in t.model.parameters())
    return t


@pytest.mark.gpu
@pytest.mark.parametrize("method", METHODS.names())
def test_every_method_trains_with_float16_autocast_and_scaling(method):
    t = _run_on_cuda(method)
    assert t.scaler.is_enabled() and t.scaler.get_scale() > 0


@pytest.mark.gpu
def test_bfloat16_autocast_needs_no_scaler():
    t = _run_on_cuda("gradcam", amp_dtype="bfloat16")
    assert not t.scaler.is_enabled()


@pytest.mark.gpu
def test_gradient_cams_run_under_autocast():
    t = _run_on_cuda("gradcam")
    batch = next(iter(t.loaders["val"]))
    x = t.to_input(batch["image"])
    with torch.enable_grad(), t.autocast():
        cams = t.model.cams(x, batch["label"].to(t.device))
    assert torch.isfinite(cams.float()).all()


@pytest.mark.gpu
def test_channels_last_on_cuda():
    t = _run_on_cuda("cam", channels_last=True)
    convs = [p for p in t.model.parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)


@pytest.mark.gpu
def test_compile_on_cuda():
    t = _run_on_cuda("cam", compile=True)
    assert t.forward is not t.model
