"""``--storage-path`` as a URI (``s3://``, ``gs://``, ``file://``) or a local folder.

Unit tests of the path/URI handling (no network: an ``s3://`` URI is only parsed and joined,
never opened), then one real sweep whose storage is a ``file://`` URI: real local Ray, real
sqlite MLflow, and ``--resume`` finding it by that URI.
"""

from __future__ import annotations

import json
import time

import pytest
import ray
from helpers import sweep_runs

from tuner.cli import parse_args
from tuner.results.next_steps import how_to_look
from tuner.search.gate import GATE_FILE, GateRecord
from tuner.spec.context import SWEEP_FILE, StoragePath, SweepContext
from tuner.spec.resolve import storage_root
from tuner.spec.resume import NothingToResume, find_sweep, has_tune_state, sweep_folders
from tuner.spec.settings import SweepSettings
from tuner.sweep import main
from tuner.tracking import schema as tr
from tuner.tracking.client import TrackingTarget


def context(space: str = "smoke", name: str = "s") -> SweepContext:
    target = TrackingTarget("sqlite:////tmp/none.db", "1", "p" * 32, name, space)
    settings = SweepSettings(space=space, metric="val_cl", mode="max", searcher="optuna",
                             scheduler="fifo", num_configs=1, seeds=1, max_concurrent=1)
    return SweepContext({"epochs": 2}, target, cache_dir="/tmp/cache", settings=settings)


# ---------------------------------------------------------------- parsing and joining
def test_local_storage_paths_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    here = tmp_path.resolve()
    assert str(storage_root(parse_args([]))) == str(here / "ray_results")  # the default
    assert str(storage_root(parse_args(["--storage-path", "res/x"]))) == str(here / "res/x")
    monkeypatch.setenv("HOME", str(here))
    assert str(storage_root(parse_args(["--storage-path", "~/r"]))) == str(here / "r")
    assert not storage_root(parse_args(["--storage-path", "res"])).is_uri


@pytest.mark.parametrize(("uri", "joined"), [
    ("s3://bucket/prefix", "s3://bucket/prefix/sw"),
    ("s3://bucket/prefix/", "s3://bucket/prefix/sw"),
    ("gs://bucket", "gs://bucket/sw"),
    ("s3://bucket/p?region=eu-west-1", "s3://bucket/p/sw?region=eu-west-1"),
    ("file:///abs/results", "file:///abs/results/sw"),
])
def test_uris_are_kept_as_given_and_join_before_their_query(uri, joined):
    storage = storage_root(parse_args(["--storage-path", uri]))
    assert storage.is_uri and str(storage) == uri  # what Tune's RunConfig gets, untouched
    folder = storage / "sw"
    assert str(folder) == joined and folder.name == "sw"
    assert str(folder / SWEEP_FILE).startswith(joined.split("?")[0] + "/" + SWEEP_FILE)


def test_the_resume_hint_carries_the_uri_unchanged_without_credentials():
    uri = "s3://bucket/results?region=eu-west-1"
    assert f"--storage-path {uri}" in how_to_look(context(), StoragePath.parse(uri))
    secret = StoragePath.parse("s3://bucket/results?secret_key=wJalrXUtnFEMI")
    text = how_to_look(context(), secret)
    assert "wJalrXUtnFEMI" not in text
    assert "--storage-path s3://bucket/results?secret_key=***" in text


# ---------------------------------------------------------------- files through pyarrow.fs
@pytest.mark.parametrize("as_uri", [False, True], ids=["path", "file-uri"])
def test_sweep_files_and_the_resume_lookup_work_on_paths_and_uris(tmp_path, as_uri):
    root = f"file://{tmp_path}/results" if as_uri else str(tmp_path / "results")
    storage = StoragePath.parse(root)
    assert sweep_folders(storage) == []  # the storage does not exist yet
    with pytest.raises(NothingToResume, match=f"no sweep of space 'smoke' under {root} "):
        find_sweep(storage, None, "smoke")

    old, new, other = context("smoke", "old"), context("smoke", "new"), context("lambda", "l")
    for ctx in (old, new, other):
        ctx.save(storage / ctx.target.sweep_name)
        time.sleep(0.02)  # distinct modification times: "latest" is well defined
    assert (tmp_path / "results" / "new" / SWEEP_FILE).is_file()  # really on the filesystem
    assert SweepContext.load(storage / "new") == new
    assert [f.name for f in sweep_folders(storage, "smoke")] == ["old", "new"]
    assert [str(f) for f in sweep_folders(root)] == [f"{root}/old", f"{root}/new", f"{root}/l"]

    # Tune has not saved its state yet: not restorable, with the fix in the message.
    with pytest.raises(NothingToResume, match="start it again without --resume"):
        find_sweep(storage, None, "smoke")
    (tmp_path / "results" / "new" / "experiment_state-2026-01-01_00-00-00.json").write_text("{}")
    assert has_tune_state(storage / "new") and not has_tune_state(storage / "old")
    assert str(find_sweep(storage, None, "smoke")) == f"{root}/new"
    assert str(find_sweep(root, "new", None)) == f"{root}/new"
    with pytest.raises(NothingToResume, match=f"no sweep 'gone' under {root}"):
        find_sweep(storage, "gone", None)

    record = GateRecord(budget_hours=1.5, launched=2)
    record.save(str(storage / "new" / GATE_FILE))
    assert GateRecord.load(storage / "new") == record
    assert GateRecord.load(storage / "old") is None
    assert sorted(p.name for p in (tmp_path / "results" / "new").iterdir()) == sorted([
        "experiment_state-2026-01-01_00-00-00.json", GATE_FILE, SWEEP_FILE])  # no temp file left


# ---------------------------------------------------------------- errors before anything runs
@pytest.mark.parametrize("uri", ["s3://bucket/results", "gs://bucket/results",
                                 "file:///mnt/fer/results"])
def test_a_storage_uri_without_cache_dir_stops_before_ray_or_mlflow(tmp_path, monkeypatch,
                                                                     capsys, uri):
    monkeypatch.chdir(tmp_path)  # the default MLflow store would be ./mlflow.db
    ray_was_up = ray.is_initialized()
    assert main(["--space", "smoke", "--storage-path", uri]) == 2
    err = capsys.readouterr().err
    assert f"--storage-path {uri} is a URI" in err
    assert "pass --cache-dir" in err and "shared by all nodes" in err and "NFS" in err
    assert list(tmp_path.iterdir()) == []  # no MLflow store, no data cache, no results
    assert ray.is_initialized() == ray_was_up


# ---------------------------------------------------------------- a real sweep on a file:// URI
# (ray_runtime: the module's local Ray, tests/conftest.py)
@pytest.mark.slow(reason="a sweep on real Ray, then its resume")
def test_sweep_on_a_file_uri_completes_and_resumes_by_that_uri(ray_runtime, tmp_path,
                                                               monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    storage = f"file://{tmp_path}/results"
    mlflow_uri = f"sqlite:///{tmp_path}/mlflow.db"
    flags = ["--storage-path", storage, "--mlflow-uri", mlflow_uri]
    argv = ["--space", "smoke", "--name", "u", "--smoke-test", "--trials", "1",
            "--cache-dir", str(tmp_path / "cache"), *flags]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"--resume --name u --storage-path {storage}" in out

    folder = tmp_path / "results" / "u"  # the URI's folder, not ./file:/...
    assert not (tmp_path / "file:").exists()
    assert json.loads((folder / SWEEP_FILE).read_text())["cache_dir"] == str(tmp_path / "cache")
    assert list(folder.glob("experiment_state-*.json")) and (folder / "tuner.pkl").is_file()
    assert (folder / GATE_FILE).is_file() and len(list(folder.glob("train_trial_*"))) == 1
    assert list((tmp_path / "cache").iterdir())  # the data went to --cache-dir

    [parent], children = sweep_runs(mlflow_uri)
    assert parent.data.tags[tr.TAG_SWEEP_PATH] == f"{storage}/u"
    assert len(children) == 1 and children[0].info.status == "FINISHED"
    assert "test_cl" in children[0].data.metrics

    # --resume finds it by the URI; everything is done, so nothing runs again.
    assert main(["--resume", "--name", "u", *flags]) == 0
    assert f"resuming sweep u from {storage}/u" in capsys.readouterr().out
    [parent_again], children_again = sweep_runs(mlflow_uri)
    assert len(children_again) == len(children)  # no new trial run
    assert {r.info.status for r in [parent_again, *children_again]} == {"FINISHED"}
    assert len(list(folder.glob("train_trial_*"))) == 1
    assert str(find_sweep(storage, None, "smoke")) == f"{storage}/u"  # the latest, by the URI
