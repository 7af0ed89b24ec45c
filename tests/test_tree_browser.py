"""The tree in a real headless Chromium against the real app: the selected node is ringed,
every click selects (the same node again, after a pick in the dropdown, in another run), and
the arrow keys move between the nodes of a round.

Same guard as test_browser.py: skipped without Chromium and Playwright, required where
PDR_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import re

from browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    click_node,
    keyed,
    require_browser,
    settle,
)
from openai_server import OpenAIServer
from test_state_browser import open_run, pick_node, serving_with, stored_runs

require_browser()
from playwright.sync_api import expect, sync_playwright  # noqa: E402

VIEWPORT = {"width": 1400, "height": 1600}

# The node the tree rings: the `meta.node` of its trace named "selected", if any.
_RINGED = """(key) => {
  const plot = document.querySelector(`[class*="st-key-${key}"] .js-plotly-plot`);
  if (!plot || !plot.data) return null;
  const ring = plot.data.find((t) => t.name === 'selected');
  return ring && ring.meta ? ring.meta.node : null;
}"""


def ringed(page, chart_key: str) -> str | None:
    return page.evaluate(_RINGED, chart_key)


def expect_selected(page, trace_id: str, node_id: str) -> None:
    """The picker shows `node_id`, and the tree rings it."""
    picker = page.locator(f".st-key-history_node_{trace_id} input")
    expect(picker).to_have_value(re.compile(rf"^{node_id} "), timeout=20_000)
    settle(page)
    chart = f"history_tree_{trace_id}"
    for _ in range(40):
        if ringed(page, chart) == node_id:
            return
        page.wait_for_timeout(250)
    assert ringed(page, chart) == node_id


def click(page, trace_id: str, node_id: str) -> None:
    chart = f"history_tree_{trace_id}"
    expect(page.locator(f"{keyed(chart)} .js-plotly-plot .points path").first).to_be_attached(
        timeout=20_000)
    click_node(page, chart, node_id)
    page.wait_for_timeout(1000)  # the click's rerun has begun (a node clicked again shows
    settle(page)                 # no change to wait for)
    expect_selected(page, trace_id, node_id)


def test_every_click_selects_and_the_selected_node_is_ringed(tmp_path):
    db = tmp_path / "runs.sqlite"
    with OpenAIServer() as server:
        first, second = stored_runs(db, server, ["What is 6*7?", "What is 8*9?"],
                                    method="pdr", width=3, depth=2)
        with serving_with(db, tmp_path, server) as url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(f"{url}/history?run={first.id}")
            expect(page.get_by_text(f"Question: {first.question}")).to_be_visible(
                timeout=30_000)
            settle(page)
            click(page, first.id, "r1-draft-0")
            pick_node(page, first, "r1-draft-2")
            expect_selected(page, first.id, "r1-draft-2")
            # the node clicked last, clicked again after a pick in the dropdown
            click(page, first.id, "r1-draft-0")
            click(page, first.id, "r2-final-0")
            click(page, first.id, "r2-final-0")  # the same node twice: still selected
            # the arrow keys move between the nodes of the round (once the focus is on the
            # page, not in the node picker, where they open its list)
            click(page, first.id, "r1-draft-1")
            page.get_by_role("heading", name="History").click()
            page.keyboard.press("ArrowDown")
            expect_selected(page, first.id, "r1-draft-2")
            for _ in range(2):
                page.keyboard.press("ArrowUp")
                page.wait_for_timeout(1000)
                settle(page)
            expect_selected(page, first.id, "r1-draft-0")
            # another run starts with its own selection: no click remembered from this one
            open_run(page, second)
            picker = page.locator(f"{keyed('history_node_' + second.id)} input")
            expect(picker).not_to_have_value(re.compile(r"^r1-draft-0 "))
            click(page, second.id, "r1-draft-0")
            browser.close()
