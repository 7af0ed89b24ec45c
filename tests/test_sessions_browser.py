"""Two browser sessions on one app at once, in headless Chromium: what one types in Settings
(an endpoint, an API key) stays in that session; both see the stored runs; a run started in
one goes on to the end while the other reruns its page.

Same guard as test_browser.py: skipped without Chromium and Playwright, required where
PDR_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    go_to,
    require_browser,
    serving_app,
    set_slider,
)

from pdr_core.config import RunConfig
from pdr_core.run.methods import run
from pdr_core.store import Store
from pdr_core.testing import FakeProvider

require_browser()
from playwright.sync_api import expect, sync_playwright  # noqa: E402

KEY = "sk-PLANTED-session-a-5550123"
PREFILLED = "prefilled-session-run"
pytestmark = pytest.mark.local_model


@pytest.fixture
def app(tmp_path):
    """The app on a free loopback port, on a store that already holds one run."""
    db = tmp_path / "runs.sqlite"
    asyncio.run(run("What is 6 * 7?", RunConfig(method="vote", width=2), FakeProvider(),
                    Store(db).writer(name=PREFILLED), reference="42"))
    log_path = tmp_path / "streamlit.log"
    with serving_app(db, log_path) as url:
        yield url, db, log_path


def test_two_sessions_keep_their_own_settings_and_a_run_survives_the_other_s_reruns(app):
    url, db, log_path = app
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        a = browser.new_context(viewport={"width": 1400, "height": 1400}).new_page()
        b = browser.new_context(viewport={"width": 1400, "height": 1400}).new_page()
        for page in (a, b):
            page.goto(url)
            expect(page.get_by_role("heading", name="Run")).to_be_visible(timeout=30_000)

        # A points its session at an endpoint and types a key
        go_to(a, "Settings")
        a.get_by_text("OpenAI-compatible endpoint").click()
        a.locator(".st-key-base_url input").fill("http://127.0.0.1:9/v1")
        a.locator(".st-key-base_url input").press("Enter")
        a.locator(".st-key-api_key input").fill(KEY)
        a.locator(".st-key-api_key input").press("Enter")
        expect(a.locator(".st-key-api_key input")).to_have_value(KEY)
        # the page has applied them once it offers the connection test (importing the SDK
        # the first time takes a moment; leaving the page earlier would drop the change)
        expect(a.locator(".st-key-test_connection button")).to_be_enabled(timeout=30_000)
        expect(a.get_by_text("Name a model")).to_be_visible(timeout=30_000)

        # B, at the same time, still has the bundled model and no key at all
        go_to(b, "Settings")
        expect(b.get_by_role("radio", name="Bundled local model")).to_be_checked()
        expect(b.locator(".st-key-api_key")).to_have_count(0)
        expect(b.locator(".st-key-base_url")).to_have_count(0)
        go_to(b, "Run")
        expect(b.get_by_text("Running on the bundled SmolLM2-135M model")).to_be_visible()
        go_to(a, "Run")
        expect(a.get_by_text("Running on the bundled SmolLM2-135M model")).to_have_count(0)

        # both see the stored run
        for page in (a, b):
            go_to(page, "History")
            expect(page.get_by_text("1 run(s) match")).to_be_visible(timeout=20_000)
            expect(page.locator(".st-key-history_open input")).to_have_value(
                re.compile(PREFILLED), timeout=20_000)

        # A goes back to the bundled model and starts a small run
        go_to(a, "Settings")
        expect(a.locator(".st-key-api_key input")).to_have_value(KEY)  # still A's own
        a.get_by_text("Bundled local model").click()
        expect(a.locator(".st-key-api_key")).to_have_count(0)
        go_to(a, "Run")
        question = a.locator(".st-key-question textarea")
        question.fill("What is 17 * 3 + 1?")
        question.press("Control+Enter")
        set_slider(a, "width", "2", [str(n) for n in range(1, 17)])
        set_slider(a, "depth", "2", [str(n) for n in range(1, 9)])
        set_slider(a, "max_tokens", "64", ["64", "128", "256", "512", "1024", "2048"])
        set_slider(a, "workspace_tokens", "64", ["16", "32", "64", "128", "256", "512"])
        a.wait_for_timeout(500)
        a.locator(".st-key-run_button button").click()
        expect(a.locator(".st-key-cancel_button")).to_be_visible(timeout=20_000)

        # while it runs, B reruns its page again and again
        go_to(b, "Run")
        store = Store(db)
        b_question = b.locator(".st-key-question textarea")
        during = 0
        for attempt in range(8):
            [new] = [r for r in store.list_runs() if r.name != PREFILLED]
            if new.status != "running":
                break
            b_question.fill(f"B's own question {attempt}")
            b_question.press("Control+Enter")
            expect(b_question).to_have_value(f"B's own question {attempt}")
            b.wait_for_timeout(400)
            during += 1
        assert during >= 1, "A's run ended before B could rerun"

        # A's run finishes; B never sees it as its own
        expect(a.get_by_text("Final answer:")).to_be_visible(timeout=120_000)
        expect(a.locator(".st-key-cancel_button")).to_have_count(0, timeout=30_000)
        expect(question).to_have_value("What is 17 * 3 + 1?")
        expect(b.get_by_text("Final answer:")).to_have_count(0)
        expect(b_question).to_have_value(re.compile(r"^B's own question"))
        go_to(b, "Settings")
        expect(b.get_by_role("radio", name="Bundled local model")).to_be_checked()
        browser.close()

    [new] = [r for r in Store(db).list_runs() if r.name != PREFILLED]
    trace = Store(db).get_trace(new.id)
    assert trace.status == "completed", trace.error
    assert trace.config["width_schedule"] == [2, 1] and trace.config["max_tokens"] == 64
    assert trace.budget.calls == 4 and all(n.status == "ok" for n in trace.nodes)
    assert len(Store(db).list_runs()) == 2
    # the key typed in A's session reached neither the store nor the server's log
    for path in [*db.parent.glob(db.name + "*"), log_path]:
        assert b"PLANTED" not in path.read_bytes(), path.name
