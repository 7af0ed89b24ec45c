"""End to end in a real headless Chromium: the real app on the bundled local model, and on
the project's OpenAI-protocol test server with chosen model outputs."""

from __future__ import annotations

import re

import pytest
from browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    click_node,
    keyed,
    open_tab,
    require_browser,
    serving_app,
    set_slider,
    settle,
)
from openai_server import OpenAIServer

from pdr_core.testing import default_answer

require_browser()
from playwright.sync_api import expect, sync_playwright  # noqa: E402


def run_and_wait(page, question: str, timeout: float) -> None:
    page.locator(".st-key-run_button button").click()
    expect(page.get_by_text("Final answer:")).to_be_visible(timeout=timeout)
    expect(page.get_by_text("completed", exact=False).first).to_be_visible()
    # the page redraws once more when the run ends; interact after that
    expect(page.locator(".st-key-cancel_button")).to_have_count(0, timeout=30_000)
    page.wait_for_timeout(1500)


def click_drafts_and_see_their_detail(page, question: str, drafts: list[str]) -> None:
    """The final node is selected; clicking a draft in the tree selects it instead. Points
    are found by node id, so neither the answers nor the order plotly drew the points in
    (they follow the answer clusters) matter."""
    # The final is diffed against the workspace it was given, not an arbitrary draft.
    open_tab(page, "Diff", page.get_by_text("Against r1-distill-0 (the workspace it was given)"))
    picker = page.locator(f"{keyed('live_node_')} input")
    # The run has finished: no "latest" to follow, the picker is on its last node.
    expect(picker).to_have_value(re.compile(r"^r2-final-0 \(final, round 2, branch 0\)"))
    for draft in drafts:
        click_node(page, "live_tree_", draft)
        expect(picker).to_have_value(re.compile(rf"^{draft} \(draft, round 1"), timeout=20_000)
        expect(page.get_by_text("Conditioned on")).to_have_count(0)  # drafts see the question
    page.get_by_role("tab", name="Messages sent").click()
    expect(page.get_by_text(question).first).to_be_visible()


@pytest.mark.local_model
def test_run_pdr_in_the_browser_click_a_node_and_see_a_diff(tmp_path):
    question = "What is 17 * 3 + 1?"
    with serving_app(tmp_path / "runs.sqlite", tmp_path / "streamlit.log") as url, \
            sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        page.goto(url)
        expect(page.get_by_role("heading", name="Run")).to_be_visible(timeout=30_000)
        expect(page.get_by_text("bundled SmolLM2-135M")).to_be_visible()

        box = page.locator(".st-key-question textarea")
        box.fill(question)
        box.press("Control+Enter")
        page.locator(".st-key-reference input").fill("52")
        page.locator(".st-key-reference input").press("Enter")
        set_slider(page, "width", "2", [str(n) for n in range(1, 17)])
        steps = ["16", "32", "64", "128", "256", "512", "1024", "2048", "4096"]
        set_slider(page, "max_tokens", "128", steps)
        set_slider(page, "workspace_tokens", "64", steps)
        page.wait_for_timeout(500)
        expect(page.locator(".st-key-width input[type=range]")).to_have_value("2")
        page.screenshot(path=tmp_path / "1-settings.png", full_page=True)

        run_and_wait(page, question, timeout=180_000)
        page.screenshot(path=tmp_path / "2-finished.png", full_page=True)
        click_drafts_and_see_their_detail(page, question, ["r1-draft-1", "r1-draft-0"])
        page.screenshot(path=tmp_path / "3-node.png", full_page=True)
        browser.close()
    for name in ("1-settings", "2-finished", "3-node"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000


def mixed_answers(messages, seed) -> str:
    """Draft 2 right, the others each wrong in their own way: four answer clusters, so the
    tree draws its points in another order than with one right answer everywhere."""
    return "52" if seed == 2 else str(40 + (seed or 0))


@pytest.mark.parametrize("answer", [default_answer, mixed_answers],
                         ids=["all-right", "mixed"])
def test_clicking_a_tree_node_selects_it_whatever_the_model_answers(tmp_path, answer):
    question = "What is 17 * 3 + 1?"
    with OpenAIServer(answer=answer) as server, \
            serving_app(tmp_path / "runs.sqlite", tmp_path / "streamlit.log",
                        {"OPENAI_BASE_URL": server.base_url, "PDR_MODEL": "fake-model"}
                        ) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        page.goto(url)
        expect(page.get_by_role("heading", name="Run")).to_be_visible(timeout=30_000)
        box = page.locator(".st-key-question textarea")
        box.fill(question)
        box.press("Control+Enter")
        page.locator(".st-key-reference input").fill("52")
        page.locator(".st-key-reference input").press("Enter")
        page.wait_for_timeout(500)
        run_and_wait(page, question, timeout=60_000)  # width 4, depth 2: the defaults
        click_drafts_and_see_their_detail(page, question, ["r1-draft-3", "r1-draft-1"])
        browser.close()


HOSTILE = ('<script>alert("x")</script><img src=x onerror="alert(1)"> '
           '<a href="javascript:alert(2)">link</a> \u202eevil\u202c \x00 ' + "W" * 5000)


def test_hostile_model_text_stays_inert_in_the_run_view_and_compare(tmp_path):
    import asyncio

    from pdr_core.config import RunConfig
    from pdr_core.run.methods import run
    from pdr_core.store import Store
    from pdr_core.testing import FakeProvider, default_answer

    db = tmp_path / "runs.sqlite"
    provider = FakeProvider(answer=lambda m, seed: HOSTILE if seed == 0
                            else default_answer(m, seed))
    for width in (2, 3):
        asyncio.run(run("What is 2 + 2?", RunConfig(method="vote", width=width), provider,
                        Store(db).writer(), reference="4"))
    dialogs: list[str] = []
    with serving_app(db, tmp_path / "streamlit.log") as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(f"{url}/history")
        expect(page.get_by_role("heading", name="History")).to_be_visible(timeout=30_000)
        settle(page)
        page.locator(f"{keyed('history_node_')} input").click()
        page.get_by_role("option", name=re.compile(r"^r1-draft-0 ")).click()
        expect(page.get_by_text('<script>alert("x")</script>', exact=False).first
               ).to_be_visible(timeout=20_000)
        open_tab(page, "Diff", page.get_by_text("Compare with another node"))
        page.screenshot(path=tmp_path / "hostile-history.png", full_page=True)
        page.get_by_role("link", name="Compare").click()
        expect(page.get_by_role("heading", name="Compare")).to_be_visible(timeout=30_000)
        page.wait_for_timeout(2000)
        page.screenshot(path=tmp_path / "hostile-compare.png", full_page=True)
        # nothing the model wrote became an element of the page
        assert page.locator("img[src=x]").count() == 0
        assert page.locator("a[href^='javascript:']").count() == 0
        browser.close()
    assert dialogs == []
