"""Runs outlive the tab, in a real headless Chromium against the real app and the project's
OpenAI-protocol test server (slowed, so a run is still running when the test looks): a
reload reattaches to the live view, History follows a running run to its end and cancels
one, from a link opened in a new session.

Same guard as test_browser.py: skipped without Chromium and Playwright, required where
PDR_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import re

from browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    click_redrawn,
    go_to,
    require_browser,
    settle,
)
from openai_server import OpenAIServer
from test_state_browser import serving_with

from pdr_core.store import Store

require_browser()
from playwright.sync_api import expect, sync_playwright  # noqa: E402

VIEWPORT = {"width": 1400, "height": 1600}
LATENCY = 1.5  # seconds a call: a width-2 depth-2 run takes three of them in a row


def start_run(page, url: str, question: str) -> str:
    """Start a run on the Run page; its id, from the address."""
    page.goto(url)
    expect(page.get_by_role("heading", name="Run")).to_be_visible(timeout=30_000)
    box = page.locator(".st-key-question textarea")
    box.fill(question)
    box.press("Control+Enter")
    settle(page)
    page.locator(".st-key-run_button button").click()
    expect(page.locator(".st-key-cancel_button")).to_be_visible(timeout=20_000)
    expect(page).to_have_url(re.compile(r"run=\w+"), timeout=20_000)
    return re.search(r"run=(\w+)", page.url).group(1)


def running_badge(page):
    return page.get_by_text("● running")


def test_a_reload_mid_run_reattaches_to_the_live_view(tmp_path):
    db = tmp_path / "runs.sqlite"
    with OpenAIServer(latency=LATENCY) as server, serving_with(db, tmp_path, server) as url, \
            sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        run_id = start_run(page, url, "What is 6 * 7?")
        page.reload()
        expect(page.get_by_role("heading", name="Run")).to_be_visible(timeout=30_000)
        # the same run, still running, live: it reaches its end with no further action
        expect(running_badge(page)).to_be_visible(timeout=20_000)
        expect(page.locator(".st-key-cancel_button")).to_be_visible()
        expect(page.get_by_text("Final answer:")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("● completed")).to_be_visible()
        expect(page.locator(".st-key-cancel_button")).to_have_count(0, timeout=20_000)
        browser.close()
    assert Store(db).get_trace(run_id).status == "completed"


def test_history_follows_a_running_run_to_its_end_and_cancels_one_from_a_link(tmp_path):
    db = tmp_path / "runs.sqlite"
    with OpenAIServer(latency=LATENCY) as server, serving_with(db, tmp_path, server) as url, \
            sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        first = start_run(page, url, "What is 6 * 7?")
        go_to(page, "History")
        expect(running_badge(page)).to_be_visible(timeout=20_000)
        expect(page.locator(f".st-key-history_cancel_{first}")).to_be_visible()
        # no reload, no click: the run's end shows on its own
        expect(page.get_by_text("● completed")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Final answer:")).to_be_visible()
        expect(page.locator(f".st-key-history_cancel_{first}")).to_have_count(0)

        # long calls: on a loaded machine the second run must still be running when the
        # link has opened and Cancel is clicked
        server.latency = 20
        second = start_run(page, url, "What is 8 * 9?")
        # a link to the run, opened in a new session: the run's own live view and Cancel
        page.goto(f"{url}/history?run={second}")
        expect(page.get_by_text("Question: What is 8 * 9?")).to_be_visible(timeout=30_000)
        expect(running_badge(page)).to_be_visible(timeout=20_000)
        settle(page)
        # while the page redraws, the old button and the new one are both there
        click_redrawn(page.locator(f".st-key-history_cancel_{second} button").first)
        expect(page.get_by_text("● interrupted")).to_be_visible(timeout=30_000)
        browser.close()
    assert Store(db).get_trace(first).status == "completed"
    assert Store(db).get_trace(second).status == "interrupted"
