"""State you can trust, in a real headless Chromium against the real app and the project's
OpenAI-protocol test server: settings outlive runs and page switches, widgets that show a
run's data belong to that run, and links open exactly what they name.

Same guard as test_browser.py: skipped without Chromium and Playwright, required where
PDR_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import asyncio
import re

from browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    go_to,
    open_tab,
    require_browser,
    serving_app,
    set_slider,
    settle,
)
from openai_server import OpenAIServer

from pdr_core.config import RunConfig
from pdr_core.providers.openai import OpenAIProvider
from pdr_core.run.methods import run
from pdr_core.store import Store
from pdr_core.trace import Trace

require_browser()
from playwright.sync_api import expect, sync_playwright  # noqa: E402

VIEWPORT = {"width": 1400, "height": 1600}


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def wait_until_finished(page) -> None:
    expect(page.get_by_text("Final answer:")).to_be_visible(timeout=60_000)
    expect(page.locator(".st-key-cancel_button")).to_have_count(0, timeout=30_000)
    page.wait_for_timeout(1500)  # the page redraws once more when the run ends


def stored_runs(db, server: OpenAIServer, questions: list[str], **config) -> list[Trace]:
    """Runs of `questions` (in that order) made on the test server, with the real client."""
    provider = OpenAIProvider(server.base_url, "sk-test", "fake-model")
    settings = RunConfig(model="fake-model", base_url=server.base_url, **config)
    return [asyncio.run(run(q, settings, provider, Store(db).writer())) for q in questions]


def serving_with(db, tmp_path, server: OpenAIServer):
    return serving_app(db, tmp_path / "streamlit.log",
                       {"OPENAI_BASE_URL": server.base_url, "PDR_MODEL": "fake-model"})


def open_run(page, trace: Trace) -> None:
    """Pick `trace` in History's "Open run" box, by its question."""
    page.locator(".st-key-history_open input").click()
    page.get_by_role("option", name=re.compile(re.escape(trace.question))).click()
    expect(page.get_by_text(f"Question: {trace.question}")).to_be_visible(timeout=20_000)
    settle(page)


def pick_node(page, trace: Trace, node_id: str) -> None:
    box = page.locator(f".st-key-history_node_{trace.id} input")
    box.click()
    page.get_by_role("option", name=re.compile(rf"^{node_id} ")).click()
    expect(box).to_have_value(re.compile(rf"^{node_id} "), timeout=20_000)
    settle(page)


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


def test_forking_the_same_node_of_a_second_run_sends_the_second_run_s_prompt(tmp_path):
    db = tmp_path / "runs.sqlite"
    with OpenAIServer() as server:
        first, second = stored_runs(db, server, ["What is 23*47?", "What is 17*23?"],
                                    method="pdr", width=2, depth=2)
        server.clear()
        with serving_with(db, tmp_path, server) as url, sync_playwright() as playwright:
            page = launch(playwright).new_page(viewport=VIEWPORT)
            page.goto(f"{url}/history")
            expect(page.get_by_role("heading", name="History")).to_be_visible(timeout=30_000)
            for trace in (first, second):
                open_run(page, trace)
                pick_node(page, trace, "r2-final-0")
                box = page.locator(f".st-key-history_r2-final-0_{trace.id}_message textarea")
                open_tab(page, "Fork & playground", box)
                # the box shows this run's own prompt, untouched
                expect(box).to_have_value(re.compile(re.escape(trace.question)))
            page.get_by_role("button", name="Fork here").click()
            expect(page.get_by_role("heading", name="Run")).to_be_visible(timeout=20_000)
            wait_until_finished(page)
        [request] = server.chat_requests  # the fork called the final node again, once
    sent = "\n".join(m["content"] for m in request["body"]["messages"])
    assert "17*23" in sent and "23*47" not in sent
    [fork] = [r for r in Store(db).list_runs() if r.id not in (first.id, second.id)]
    forked = Store(db).get_trace(fork.id)
    assert forked.parent_run_id == second.id and forked.question == second.question
    # an untouched box is no edit: the fork sent the node's own messages
    assert forked.node("r2-final-0").messages == second.node("r2-final-0").messages


def test_a_name_saved_on_one_run_stays_on_that_run_and_shows_at_once(tmp_path):
    db = tmp_path / "runs.sqlite"
    with OpenAIServer() as server:
        first, second = stored_runs(db, server, ["What is 2*3?", "What is 5*7?"],
                                    method="vote", width=2)
        with serving_with(db, tmp_path, server) as url, sync_playwright() as playwright:
            page = launch(playwright).new_page(viewport=VIEWPORT)
            page.goto(f"{url}/history")
            expect(page.get_by_role("heading", name="History")).to_be_visible(timeout=30_000)
            page.get_by_text("Name, tags, export, delete").click()
            for trace, name in ((first, "first-name"), (second, "")):
                open_run(page, trace)
                field = page.locator(f".st-key-history_name_{trace.id} input")
                expect(field).to_have_value("")  # nothing carried over from the other run
                if name:
                    field.fill(name)
                    page.locator(f".st-key-history_tags_{trace.id} input").fill("demo")
                    page.get_by_role("button", name="Save").click()
                    # the new name shows at once, above the run view
                    expect(page.get_by_text(f"Name: {name} · Tags: demo")).to_be_visible(
                        timeout=20_000)
                else:
                    page.get_by_role("button", name="Save").click()
                    page.wait_for_timeout(1500)
                    expect(page.get_by_text("Name: first-name")).to_have_count(0)
    stored = {r.id: (r.name, r.tags) for r in Store(db).list_runs()}
    assert stored == {first.id: ("first-name", ("demo",)), second.id: (None, ())}


def test_a_deep_link_opens_its_run_node_and_tab_in_a_fresh_browser(tmp_path):
    db = tmp_path / "runs.sqlite"
    with OpenAIServer() as server:
        linked, _newer = stored_runs(db, server, ["What is 3*11?", "What is 4*12?"],
                                     method="pdr", width=2, depth=2)
        with serving_with(db, tmp_path, server) as url, sync_playwright() as playwright:
            browser = launch(playwright)
            page = browser.new_context(viewport=VIEWPORT).new_page()
            page.goto(f"{url}/history?run={linked.id}&node=r1-draft-1&tab=diff")
            expect(page.get_by_text(f"Question: {linked.question}")).to_be_visible(
                timeout=30_000)
            settle(page)
            picker = page.locator(f".st-key-history_node_{linked.id} input")
            expect(picker).to_have_value(re.compile(r"^r1-draft-1 "))
            expect(page.get_by_role("tab", name="Diff", selected=True)).to_be_visible()
            # clicking another node puts it in the address; a reload opens it again
            picker.click()
            page.get_by_role("option", name=re.compile(r"^r2-final-0 ")).click()
            expect(page).to_have_url(re.compile(r"node=r2-final-0"), timeout=20_000)
            settle(page)
            page.reload()
            expect(page.get_by_text(f"Question: {linked.question}")).to_be_visible(
                timeout=30_000)
            settle(page)
            expect(picker).to_have_value(re.compile(r"^r2-final-0 "), timeout=20_000)
            expect(page.get_by_role("tab", name="Diff", selected=True)).to_be_visible()
            browser.close()
