"""What a user sees in a real browser after a sweep: the MLflow UI, the Optuna dashboard, the
report page.

One ``pareto`` smoke sweep (two trials, Optuna study in SQLite) logs to a real ``mlflow server``
on 127.0.0.1; Debian's ``chromium``, driven by Playwright, then renders each page and the checks
read what it rendered. ``FER_SCREENSHOTS=DIR`` also saves a screenshot of each page there (the
README's pictures in docs/img/ come from it).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import free_port
from mlflow import MlflowClient

from tuner.tracking import server as ms
from tuner.tracking import ui

SWEEP = "ui-smoke"
EXPERIMENT = "ui-test"
TIMEOUT_MS = 60_000  # the MLflow UI's first load compiles a large bundle on 2 busy cores

pytestmark = pytest.mark.slow(reason="a pareto sweep, an MLflow server and chromium")


def shoot(page, name: str) -> None:
    folder = os.environ.get("FER_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        assistant = page.locator('[aria-label="Close"]')  # MLflow's chat panel hides the table
        if assistant.count():
            assistant.first.click()
        page.screenshot(path=str(Path(folder) / name), full_page=False)


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} before serving {url}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"nothing answered {url} within {timeout:.0f} s")


def stop(proc: subprocess.Popen) -> None:
    """End a process started in its own session, and everything it started."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory) -> Iterator[dict]:
    """A finished ``pareto`` smoke sweep tracked by a live MLflow server; yields its facts."""
    root = tmp_path_factory.mktemp("ui")
    config = ms.resolve_config(f"sqlite:///{root}/server.db", str(root / "artifacts"),
                               port=free_port())
    with ms.start(config) as server:
        optuna_db = f"sqlite:///{root}/optuna.db"
        argv = [sys.executable, "-m", "tuner.sweep", "--space", "pareto", "--smoke-test",
                "--trials", "2", "--name", SWEEP, "--experiment", EXPERIMENT,
                "--storage-path", str(root / "ray_results"), "--mlflow-uri", server.url,
                "--optuna-storage", optuna_db, "--num-cpus", "2"]
        done = subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=1200,
                              start_new_session=True)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        link = re.search(r"^This sweep:\s+(\S+)$", done.stdout, re.M)
        assert link, done.stdout[-2000:]
        yield {"root": root, "url": server.url, "link": link.group(1), "optuna": optuna_db,
               "stdout": done.stdout}


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1600, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    yield tab
    context.close()


def trial_names(url: str) -> list[str]:
    client = MlflowClient(tracking_uri=url)
    exp = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([exp.experiment_id], ui.trials_filter(SWEEP))
    return sorted(r.info.run_name for r in runs)


def test_experiment_opens_on_its_training_runs(finished_sweep, page):
    url = finished_sweep["url"]
    exp = MlflowClient(tracking_uri=url).get_experiment_by_name(EXPERIMENT)
    assert exp.tags[ui.TAG_EXPERIMENT_KIND] == ui.KIND_MODEL_TRAINING
    names = trial_names(url)
    assert len(names) == 2 and all(re.fullmatch(r"\S+ λ=[\d.e-]+( L\S+)? s\d+", n)
                                   for n in names), names
    link = ui.experiment_link(url, exp.experiment_id)
    assert f"Experiment:    {link}" in finished_sweep["stdout"]
    page.goto(link)
    page.get_by_text(SWEEP, exact=True).first.wait_for()  # the parent row: the runs table
    assert "/runs" in page.url, page.url  # not the GenAI traces overview
    page.get_by_text("Run Name", exact=True).first.wait_for()
    # The parent row folds its trials away: its expander (in the run name cell) unfolds them.
    page.locator('button[data-component-id*="runnamecellrenderer"]').first.click()
    for name in names:
        page.get_by_text(name, exact=True).first.wait_for()
    shoot(page, "mlflow_experiment.png")


def test_printed_link_opens_the_sweeps_trials_sorted_by_its_objective(finished_sweep, page):
    url, link = finished_sweep["url"], finished_sweep["link"]
    assert link.startswith(f"{url}/#/experiments/") and "orderByKey=metrics." in link
    page.goto(link)
    names = trial_names(url)
    for name in names:
        page.get_by_text(name, exact=True).first.wait_for()
    assert page.get_by_text(SWEEP, exact=True).count() == 0  # the filter leaves the parent out
    body = page.inner_text("body")
    client = MlflowClient(tracking_uri=url)
    exp = client.get_experiment_by_name(EXPERIMENT)
    best_first = [r.info.run_name for r in client.search_runs(
        [exp.experiment_id], ui.trials_filter(SWEEP), order_by=["metrics.val_cl DESC"])]
    shown = sorted(best_first, key=body.find)
    assert shown == best_first, (shown, best_first)  # the page lists them in the link's order
    assert "tags.`sweep.name`" in page.url or "searchFilter" in page.url
    shoot(page, "mlflow_sweep_link.png")


def test_optuna_dashboard_shows_the_study(finished_sweep, page):
    port = free_port()
    proc = subprocess.Popen(["optuna-dashboard", finished_sweep["optuna"], "--host",
                             "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/", proc)
        page.goto(f"http://127.0.0.1:{port}/dashboard")
        page.get_by_text(SWEEP).first.wait_for()
        shoot(page, "optuna_dashboard.png")
    finally:
        stop(proc)
    assert f"optuna-dashboard {finished_sweep['optuna']}" in finished_sweep["stdout"]


def test_report_html_renders_with_every_image(finished_sweep, page):
    out = finished_sweep["root"] / "report"
    done = subprocess.run([sys.executable, "-m", "analysis.report", "--experiment", EXPERIMENT,
                           "--mlflow-uri", finished_sweep["url"], "--no-progress", "-o",
                           str(out)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    page.goto((out / "index.html").as_uri())
    page.wait_for_load_state("load")
    widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.src, i.naturalWidth])")
    assert widths, "the report shows no image"
    broken = [src for src, width in widths if width == 0]
    assert not broken, broken
    shoot(page, "report.png")
