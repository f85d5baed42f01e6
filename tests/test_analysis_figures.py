"""Figures from a real sqlite MLflow store: known sweep values and two really trained trials.

Expected numbers come from the fixture's own tables (``analysis_store``) and numpy, never from
``analysis.stats``; the trained trials' matrices are compared with what they logged.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import analysis_store as st
import numpy as np
import pytest
import torch
from analysis_store import store_cache, store_fixture  # noqa: F401 (fixtures)
from matplotlib.figure import Figure
from mlflow import MlflowClient

from analysis import figures as fg
from analysis.maps import DataUnavailable
from fer_core import CLASSES, EXPRESSION_CLASSES
from fer_core.au import render_au_maps
from fer_core.inference import explain_batch, load_model
from fer_core.loaders import build_split
from tuner.results import artifacts
from tuner.tracking import schema as tr

CPU = fg.FigureOptions(device="cpu", progress=False)


def source(store, experiment, where=(), options=CPU):
    return fg.FigureSource(experiment, store.uri,
                           fg.load_selection(experiment, store.uri, where), options)


def panels(fig: Figure):
    """The figure's plotting axes, colour bars left out."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


# ---------------------------------------------------------------- Fig. 5
def test_lambda_panels_show_means_intervals_and_the_dashed_baseline(store):
    fig = fg.lambda_figure(source(store, st.SWEEPS))
    axes = panels(fig)
    assert [ax.get_title() for ax in axes] == ["CL (%)", "CAM-COS", "ATT-COS"]
    lambdas = [lam for lam in st.LAMBDA_RUNS if lam > 0]
    for ax, metric in zip(axes, ("test_cl", "test_cam_cos", "test_att_cos"), strict=True):
        assert ax.get_xlabel() == "λ" and ax.get_xscale() == "log"
        points, _, (bars,) = ax.containers[0].lines
        expected = [st.t_interval(st.LAMBDA_RUNS[lam][metric]) for lam in lambdas]
        assert list(points.get_xdata()) == lambdas  # λ > 0 only, one point per λ
        np.testing.assert_allclose(points.get_ydata(), [m for m, _ in expected])
        half_widths = [(seg[1][1] - seg[0][1]) / 2 for seg in bars.get_segments()]
        np.testing.assert_allclose(half_widths, [h for _, h in expected])
        (baseline,) = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
        assert baseline.get_ydata()[0] == pytest.approx(np.mean(st.LAMBDA_RUNS[0.0][metric]))


def test_lambda_keeps_one_layer_set_and_refuses_runs_that_differ_otherwise(store):
    # the pareto trials vary the layer set too: the curve keeps layer 5 (analysis.defaults)
    pareto = source(store, st.SWEEPS, ["space=pareto"])
    fig = fg.lambda_figure(pareto)
    points = panels(fig)[0].containers[0].lines[0]
    assert list(points.get_xdata()) == [0.5, 4.0]  # the λ > 0 trials at layer 5
    assert "layer 5" in fig.get_suptitle()
    # a curve over runs that differ in anything but λ, seed and layer set would mix models
    runs = pareto.runs.copy()
    runs.loc[runs["lambda_au"] == 4.0, "img_size"] = 96  # a trial the curve keeps
    with pytest.raises(ValueError, match=r"mix img_size .*--where img_size=VALUE"):
        fg.lambda_figure(fg.FigureSource(st.SWEEPS, store.uri, runs, CPU))


# ---------------------------------------------------------------- Pareto
def test_pareto_front_is_exactly_the_known_non_dominated_trials(store):
    fig = fg.pareto_figure(source(store, st.SWEEPS))
    (ax,) = panels(fig)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("ATT-COS (test)", "CL (%, test)")
    scatter = ax.collections[0].get_offsets()
    assert len(scatter) == len(st.PARETO_RUNS)
    assert sorted(map(tuple, scatter)) == sorted((att, cl) for *_, cl, att, _ in st.PARETO_RUNS)
    (front,) = ax.get_lines()
    known = sorted((att, cl) for _, _, cl, att, on_front in st.PARETO_RUNS if on_front)
    assert list(zip(front.get_xdata(), front.get_ydata(), strict=True)) == known


def test_pareto_mask_keeps_ties_and_drops_weakly_dominated_points():
    assert fg.pareto_mask([[1, 1], [1, 1], [2, 0], [1, 0]]) == [True, True, True, False]


# ---------------------------------------------------------------- Figs. 10–11
def test_matrices_show_the_logged_json_of_each_arms_best_run(store):
    fig = fg.matrices_figure(source(store, st.TRAINED))
    axes = panels(fig)
    assert len(axes) == 4
    for row, (label, lam) in enumerate((("w/ AU", 4.0), ("w/o AU", 0.0))):
        run_id = store.trained[lam]
        logged = store.matrices[run_id]
        confusion, cosine = axes[2 * row], axes[2 * row + 1]
        assert confusion.get_title().startswith(f"{label}: ") and run_id[:8] in \
            confusion.get_title()
        assert (confusion.get_xlabel(), confusion.get_ylabel()) == ("predicted", "true")
        np.testing.assert_allclose(confusion.images[0].get_array(), logged["confusion"])
        cos = logged["cos_matrix"]
        values = [[math.nan if v is None else v for v in r] for r in cos["values"]]
        np.testing.assert_allclose(cosine.images[0].get_array(), values)
        assert [t.get_text() for t in cosine.get_xticklabels()] == cos["cols"]
        assert [t.get_text() for t in cosine.get_yticklabels()] == cos["rows"]


# ---------------------------------------------------------------- Figs. 6–9
def _class_means(maps: torch.Tensor, labels: torch.Tensor, keep: torch.Tensor) -> np.ndarray:
    return np.stack([maps[(labels == k) & keep].double().mean(0).numpy()
                     for k in EXPRESSION_CLASSES])


@pytest.mark.slow(reason="re-runs the trained models over the test split")
def test_maps_average_each_class_over_the_test_split(store):
    fig = fg.maps_figure(source(store, st.TRAINED))
    axes = panels(fig)
    columns = ["AU map (reference)", "w/ AU\nattention layer 5", "w/ AU\nattention layer 4",
               "w/ AU\nCAM (true class)", "w/o AU\nattention layer 5", "w/o AU\nCAM (true class)"]
    assert len(axes) == 6 * len(columns)
    assert [ax.get_title() for ax in axes[:len(columns)]] == columns
    rows = [axes[r * len(columns)].get_ylabel().split("\n")[0] for r in range(6)]
    assert rows == [CLASSES[k] for k in EXPRESSION_CLASSES]

    # independently: the whole test split as one batch, averaged per class here
    loaded = load_model(f"runs:/{store.trained[0.0]}", store.uri)
    test = build_split(loaded.cfg.data, "test")
    batch = torch.utils.data.default_collate([test[i] for i in range(len(test))])
    labels = batch["label"]
    au, valid = render_au_maps(batch["landmarks"], labels, size=(64, 64))
    seen = explain_batch(loaded, batch["image"], class_idx=labels)
    everyone = torch.ones_like(valid)
    expected = {0: _class_means(au, labels, valid),
                4: _class_means(seen.attention[5], labels, everyone),
                5: _class_means(seen.cams, labels, everyone)}
    for column, want in expected.items():
        shown = np.stack([axes[r * len(columns) + column].images[0].get_array()
                          for r in range(6)])
        np.testing.assert_allclose(shown, want, atol=1e-5)


def test_maps_say_which_data_root_is_missing(store, tmp_path, capsys):
    """A run trained on data this machine lacks: the message names its data_root."""
    client = MlflowClient(store.uri)
    exp_id = st.new_experiment(client, "fig-nodata", tmp_path)
    flat = st.BASE | {"dataset": "rafdb", "data_root": str(tmp_path / "RAF-DB"),
                      "lambda_au": 0.0, "layers": "5"}
    run_id = st.add_trial(client, exp_id, "none", "methods", flat, {"best_val_cl": 1.0})
    with tempfile.TemporaryDirectory() as tmp:
        weights = torch.load(client.download_artifacts(store.trained[0.0], "model/selected.pt",
                                                       tmp), weights_only=False)
        config = weights["config"] | {"dataset": "rafdb", "data_root": flat["data_root"]}
        (path,) = artifacts.write_model(weights["state_dict"], config, Path(tmp) / "model")
        client.log_artifact(run_id, str(path), artifact_path=tr.ARTIFACT_MODEL)
    with pytest.raises(DataUnavailable, match=f"data_root='{tmp_path / 'RAF-DB'}'"):
        fg.maps_figure(source(store, "fig-nodata", options=fg.FigureOptions(
            run_ids=(run_id,), device="cpu", progress=False)))
    assert fg.main(["--experiment", "fig-nodata", "--mlflow-uri", store.uri, "--figure", "maps",
                    "--run-id", "nope", "-o", str(tmp_path / "out")]) == 2
    assert "--run-id nope: not among the 1 selected" in capsys.readouterr().err


# ---------------------------------------------------------------- CLI
def test_cli_all_writes_what_it_can_and_names_what_it_skips(store, tmp_path, capsys):
    out = tmp_path / "figs"
    assert fg.main(["--experiment", st.SWEEPS, "--mlflow-uri", store.uri, "--format", "png,pdf",
                    "-o", str(out), "--no-progress"]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == ["lambda.pdf", "lambda.png", "pareto.pdf", "pareto.png"]
    assert all(p.stat().st_size > 1000 for p in out.iterdir())
    err = capsys.readouterr().err
    # the sweep trials logged no artifacts: both artifact figures are skipped, saying so
    assert "skipped matrices: the w/ AU run" in err and "matrices/confusion.json" in err
    assert "skipped maps: w/ AU run" in err and "model/selected.pt" in err


def test_cli_named_figure_without_its_runs_is_an_error(store, tmp_path, capsys):
    args = ["--experiment", st.TRAINED, "--mlflow-uri", store.uri, "-o", str(tmp_path)]
    assert fg.main(args + ["--figure", "pareto"]) == 2
    assert "no finished trial of a 'pareto' sweep" in capsys.readouterr().err
    assert fg.main(args + ["--figure", "matrices", "--where", "lambda_au=0"]) == 2
    assert "no finished w/ AU (λ > 0) run" in capsys.readouterr().err
    assert fg.main(args + ["--figure", "matrices", "--format", "pdf"]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["matrices.pdf"]
    assert (tmp_path / "matrices.pdf").read_bytes().startswith(b"%PDF")
