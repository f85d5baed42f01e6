"""The documentation site as a reader meets it: built strictly, served over HTTP, read in a browser.

``mkdocs build --strict`` (the CI check: a broken link, a page missing from the navigation or a
reference that cannot be resolved fails it) writes the site into a temporary folder; a local
HTTP server on 127.0.0.1 serves it (the search index is fetched by a web worker, which a
``file://`` page cannot start); Debian's ``chromium``, driven by Playwright, opens the home page,
getting started, the generated CLI reference and the search box, and checks what it rendered,
every image included. ``FER_SCREENSHOTS=DIR`` also saves a screenshot of each page there.
"""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_MS = 60_000

pytestmark = pytest.mark.slow(
    reason="the strict build imports every command and public module (torch, Ray, MLflow) "
           "to generate the references: over a minute on a busy 2-core machine")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
         str(ROOT / "mkdocs.yml"), "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (out / "index.html").is_file() and (out / "search" / "search_index.json").is_file()
    return out


@pytest.fixture(scope="module")
def base_url(site) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # one line per request would bury pytest's output
        pass


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url)
            if not r.url.startswith(("http://127.0.0.1", "data:", "blob:")) else None)
    yield page
    context.close()
    assert not outside, f"the site fetched from outside: {outside[:5]}"


def shoot(page, name: str) -> None:
    folder = os.environ.get("FER_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=False)


def open_page(page, url: str) -> None:
    page.goto(url)
    page.wait_for_load_state("load")
    # Every image has finished, loaded or failed, before its width is read.
    page.wait_for_function("Array.from(document.images).every(i => i.complete)")


def broken_images(page) -> list[str]:
    widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.src, i.naturalWidth])")
    return [src for src, width in widths if width == 0]


def test_home_page_shows_the_overview_and_links_into_the_guides(page, base_url):
    open_page(page, base_url + "/")
    assert page.locator("article h1").inner_text().rstrip("¶").strip() == "au-guided-fer"
    overview = page.locator("img[src$='overview.png']")
    assert overview.count() == 1 and overview.evaluate("i => i.naturalWidth") > 300
    assert not broken_images(page)
    nav = page.locator("nav.md-nav--primary").inner_text()
    for title in ("Getting started", "Sweeps and spaces", "Troubleshooting", "Benchmarks"):
        assert title in nav, f"{title} missing from the navigation"
    shoot(page, "docs_home.png")


def test_getting_started_gives_the_commands_and_every_image_loads(page, base_url):
    open_page(page, base_url + "/getting-started/")
    code = page.locator("pre").all_inner_texts()
    assert any("python -m tuner.sweep --space lambda_layers" in block for block in code)
    assert any("python -m pytest -q" in block for block in code)
    assert page.locator("img").count() >= 1 and not broken_images(page)
    assert "λ = 4 at layer 5" in page.locator("table").first.inner_text()
    shoot(page, "docs_getting_started.png")


def test_cli_reference_lists_the_sweep_flags_from_the_parser(page, base_url):
    open_page(page, base_url + "/reference/cli/")
    assert page.locator("h2", has_text="python -m tuner.sweep").count() == 1
    body = page.locator("article").inner_text()
    for flag in ("--budget-hours", "--resume", "--estimate", "--mlflow-uri"):
        assert flag in body, flag
    assert page.locator("h3", has_text="python -m fer_core.data preview").count() == 1
    shoot(page, "docs_cli_reference.png")


def test_api_reference_renders_the_docstrings(page, base_url):
    open_page(page, base_url + "/reference/api/")
    body = page.locator("article").inner_text()
    for name in ("ExperimentConfig", "Trainer", "register_method", "build_backbone",
                 "render_au_maps", "FERMetrics"):
        assert name in body, name
    assert "One experiment: every section, frozen and validated" in body


def test_search_finds_a_flag(page, base_url):
    open_page(page, base_url + "/")
    box = page.locator("input.md-search__input")
    box.click()
    box.press_sequentially("budget", delay=50)  # the search answers key presses, not a paste
    results = page.locator(".md-search-result__item")
    results.first.wait_for(state="visible")
    assert results.count() >= 1
    assert "budget" in page.locator(".md-search-result").inner_text().lower()
    shoot(page, "docs_search.png")
