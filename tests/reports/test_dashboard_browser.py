"""The dashboard in a real browser: headless Chromium (Debian's `chromium`) driven by Playwright, the page
opened from file:// with the network unused. Skips only when no Chromium is found and GENREC_REQUIRE_BROWSER
is unset; CI sets it, so there a missing browser fails."""

import os
import shutil
from pathlib import Path

import pytest

from genrec_bench.bench.stats import GateSettings
from genrec_bench.reports.dashboard import build
from genrec_bench.reports.history import add, read_run

pytestmark = pytest.mark.browser
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _chromium() -> str | None:
    found = os.environ.get("GENREC_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    return found if found and Path(found).exists() else None


@pytest.fixture(scope="module")
def browser_path():
    path = _chromium()
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        path = (
            None
            if not os.environ.get("GENREC_REQUIRE_BROWSER")
            else pytest.fail(
                "GENREC_REQUIRE_BROWSER is set but playwright is not installed: pip install playwright"
            )
        )
    if path is None:
        if os.environ.get("GENREC_REQUIRE_BROWSER"):
            pytest.fail(
                "GENREC_REQUIRE_BROWSER is set but no Chromium was found: apt-get install chromium "
                "(or point GENREC_CHROMIUM at one)"
            )
        pytest.skip("no Chromium here (apt-get install chromium) and GENREC_REQUIRE_BROWSER is unset")
    return path


@pytest.fixture
def site(nights, kit, tmp_path):
    """A history of six quiet nights and tonight with one cell 20 % slower, as a dashboard."""
    paths, tonight = nights
    planted = kit.CELLS[1]
    for path in [*paths, tonight(scale={planted: 1.2})]:
        add(tmp_path / "history", read_run(str(path)))
    index = build(tmp_path / "history", tmp_path / "site", GateSettings(), [])
    series = next(k for k in read_run(str(paths[0])).cells if k.startswith(planted + "@"))
    return index, planted, series


def test_the_page_shows_the_planted_regression_offline(browser_path, site, tmp_path):
    from playwright.sync_api import sync_playwright

    index, planted, series = site
    url = index.resolve().as_uri()
    errors, requests = [], []
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=browser_path, headless=True, args=FLAGS
        )
        try:
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(url)
            row = page.locator(f'#verdicts tr[data-series="{series}"][data-metric="p50_ms"]')
            assert row.locator("td.verdict").inner_text() == "regression"
            assert row.locator("td.ratio").inner_text().startswith("+2")  # about +20 %, with its ratio ×1.2…
            assert "(×1.2" in row.locator("td.ratio").inner_text()
            page.check("#only-changed")  # the filter leaves the planted cell's findings only
            shown = page.locator("#verdicts tr[data-series]")
            assert shown.count() == 2 and set(
                shown.evaluate_all("rows => rows.map(r => r.dataset.series)")
            ) == {series}
            page.click("#verdicts th[data-key=change]")  # sortable
            row.locator("a").first.click()
            page.wait_for_function(
                "document.getElementById('plot-p50') && document.getElementById('plot-p50').data"
            )
            points = page.evaluate("document.getElementById('plot-p50').data[0].x.length")
            assert points == 7  # six nights and tonight
            assert "regression" in page.locator("#cell-verdict").inner_text()
            for view in ("grid", "batch", "serving", "kernels", "machines"):
                page.goto(f"{url}#{view}")
                page.wait_for_timeout(100)
            assert page.locator("h3").first.inner_text() == "nvidia-h100-80gb-hbm3"
        finally:
            context.close()
    assert errors == []
    assert [r for r in requests if r.split("#")[0] != url] == []  # nothing but the page itself


def test_the_page_opens_on_tonights_machine_or_the_one_the_address_names(browser_path, nights, kit, tmp_path):
    """Two machines in one history: the page opens on the one whose latest run is the newest (an older run of
    another machine sorts first by name but is not tonight's), and ?machine=NAME opens on that one."""
    import datetime

    import numpy as np
    from playwright.sync_api import sync_playwright

    paths, tonight = nights
    older = {
        "gpu_name": "NVIDIA A100-SXM4-80GB",
        "gpu_count": 1,
        "gpu_memory_mib": 81920,
        "compute_capability": "8.0",
    }
    rng = np.random.default_rng(3)
    a100 = kit.write_run(
        tmp_path / "a100.json",
        [kit.make_record(kit.CELLS[0], kit.night(rng, 1.0))],
        when=datetime.datetime(2026, 10, 1, 3, 0, tzinfo=datetime.timezone.utc),
        hardware=older,
    )
    for path in [a100, *paths, tonight()]:
        add(tmp_path / "history", read_run(str(path)))
    url = build(tmp_path / "history", tmp_path / "site", GateSettings(), []).resolve().as_uri()
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=browser_path, headless=True, args=FLAGS
        )
        try:
            page = context.new_page()
            chosen = "document.getElementById('machine').selectedOptions[0].textContent"
            page.goto(url)
            assert page.evaluate(chosen) == "nvidia-h100-80gb-hbm3"
            assert page.locator("#verdicts tr[data-series]").count() > 1  # the H100's tonight, not the A100's
            page.goto(url + "?machine=nvidia-a100-sxm4-80gb")
            assert page.evaluate(chosen) == "nvidia-a100-sxm4-80gb"
        finally:
            context.close()
