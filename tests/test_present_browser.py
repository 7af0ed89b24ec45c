"""Presentation mode in a real headless Chromium against the real app: one run, its tree
large beside a plain explanation of PDR, a scrubber through its time, no editing control.

Same guard as test_browser.py: skipped without Chromium and Playwright, required where
PDR_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

from browser_support import CHROMIUM, CHROMIUM_ARGS, keyed, require_browser, settle
from openai_server import OpenAIServer
from test_state_browser import serving_with, stored_runs

require_browser()
from playwright.sync_api import expect, sync_playwright  # noqa: E402


def test_presentation_mode_shows_the_run_the_explanation_and_a_scrubber_only(tmp_path):
    db = tmp_path / "runs.sqlite"
    with OpenAIServer(latency=0.2) as server:
        [trace] = stored_runs(db, server, ["What is 6*7?"], method="pdr", width=2, depth=2)
        with serving_with(db, tmp_path, server) as url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            page.goto(f"{url}/history?run={trace.id}&present=1")
            expect(page.get_by_text("Parallel-Distill-Refine (PDR)")).to_be_visible(
                timeout=30_000)
            settle(page)
            expect(page.get_by_text("Question: What is 6*7?")).to_be_visible()
            tree = page.locator(f"{keyed('present_tree_' + trace.id)} .js-plotly-plot")
            expect(tree).to_be_visible()
            assert tree.bounding_box()["height"] >= 700
            # nothing to edit: no table, filters, forms, node picker or fork
            for gone in ("history_table", "history_method", "history_name_", "history_node_"):
                expect(page.locator(keyed(gone))).to_have_count(0)
            expect(page.get_by_role("button", name="Fork here")).to_have_count(0)
            # the scrubber: the run's start has no call yet, its end all of them
            calls = page.locator("[data-testid=stMetric]").filter(has_text="Calls")
            expect(calls).to_contain_text("4 / 4")
            thumb = page.locator(f"{keyed('present_at_' + trace.id)} input[type=range]")
            thumb.focus()
            thumb.press("Home")
            expect(calls).to_contain_text("0 / 4", timeout=20_000)
            thumb.press("End")
            expect(calls).to_contain_text("4 / 4", timeout=20_000)
            browser.close()
