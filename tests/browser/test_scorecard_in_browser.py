"""The Scorecard page in a real browser at 1366×768: the table of estimates and the error-bar chart drawn."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser.conftest import start_app
from tests.test_app_scorecard import import_runs

pytestmark = pytest.mark.slow


def test_the_scorecard_shows_each_runs_interval_as_a_chart(browser, demo_data_dir, tmp_path):
    import_runs(demo_data_dir, tmp_path)
    process, url = start_app(demo_data_dir)
    try:
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.goto(f"{url}/scorecard")
        page.get_by_text("Scorecard", exact=True).first.wait_for(timeout=120_000)
        chart = page.locator("[data-testid=stVegaLiteChart]").first
        chart.wait_for(timeout=120_000)
        drawn = chart.locator("canvas, svg").first
        drawn.wait_for(timeout=60_000)
        box = drawn.bounding_box()
        assert box and box["width"] > 300 and box["height"] > 40, box
        main = page.get_by_test_id("stMain").inner_text()
        assert "llama is accepted" in main and "points" in main
        assert page.get_by_test_id("stDataFrame").first.bounding_box()["height"] > 60  # the table (a canvas grid)
        shots = Path(os.environ.get("LOUPE_SCREENSHOTS") or tmp_path)
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / "scorecard.png"))
        page.close()
    finally:
        process.kill()
        process.wait()
