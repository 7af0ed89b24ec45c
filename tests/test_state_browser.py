"""State you can trust, in a real headless Chromium against the real app and the project's
OpenAI-protocol test server: settings outlive runs and page switches, widgets that show a
run's data belong to that run, and links open exactly what they name.

Same guard as test_browser.py: skipped without Chromium and Playwright, required where
PDR_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

from browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    go_to,
    require_browser,
    serving_app,
    set_slider,
)
from openai_server import OpenAIServer

from pdr_core.store import Store

require_browser()
from playwright.sync_api import expect, sync_playwright  # noqa: E402

VIEWPORT = {"width": 1400, "height": 1600}


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def wait_until_finished(page) -> None:
    expect(page.get_by_text("Final answer:")).to_be_visible(timeout=60_000)
    expect(page.locator(".st-key-cancel_button")).to_have_count(0, timeout=30_000)
    page.wait_for_timeout(1500)  # the page redraws once more when the run ends


def chat_models(server: OpenAIServer) -> list[str]:
    return [r["body"]["model"] for r in server.chat_requests if r["body"]]


def test_a_configured_endpoint_and_the_run_settings_outlive_a_run_and_page_switches(tmp_path):
    db = tmp_path / "runs.sqlite"
    with OpenAIServer(models=("fake-model",), latency=0.3) as server, \
            serving_app(db, tmp_path / "streamlit.log") as url, \
            sync_playwright() as playwright:
        page = launch(playwright).new_page(viewport=VIEWPORT)
        page.goto(url)
        expect(page.get_by_role("heading", name="Run")).to_be_visible(timeout=30_000)
        go_to(page, "Settings")
        page.get_by_text("OpenAI-compatible endpoint").click()
        for key, value in (("base_url", server.base_url), ("model_name", "fake-model")):
            page.locator(f".st-key-{key} input").fill(value)
            page.locator(f".st-key-{key} input").press("Enter")
        expect(page.get_by_text("Name a model")).to_have_count(0, timeout=20_000)

        go_to(page, "Run")
        question = page.locator(".st-key-question textarea")
        question.fill("What is 2 + 2?")
        question.press("Control+Enter")
        set_slider(page, "width", "3", [str(n) for n in range(1, 17)])
        page.wait_for_timeout(500)
        page.locator(".st-key-run_button button").click()
        wait_until_finished(page)
        first = len(server.chat_requests)
        assert first > 0 and set(chat_models(server)) == {"fake-model"}

        for name in ("History", "Run", "Settings", "Run"):
            go_to(page, name)
            page.wait_for_timeout(1500)
        expect(question).to_have_value("What is 2 + 2?")
        expect(page.locator(".st-key-width [data-testid=stSliderThumbValue]")).to_have_text("3")
        expect(page.get_by_text("bundled SmolLM2")).to_have_count(0)
        page.locator(".st-key-run_button button").click()
        wait_until_finished(page)

    # the second run went to the test server, with the same model and width
    assert len(server.chat_requests) > first and set(chat_models(server)) == {"fake-model"}
    runs = Store(db).list_runs()
    assert len(runs) == 2
    for summary in runs:
        trace = Store(db).get_trace(summary.id)
        assert trace.question == "What is 2 + 2?"
        assert trace.config["model"] == "fake-model"
        assert trace.config["width_schedule"] == [3, 1]
