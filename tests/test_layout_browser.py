"""The layout holds at 800 px wide, in a real headless Chromium against the real app: no
metric, table or button cut, a long question folded to its start.

Same guard as test_browser.py: skipped without Chromium and Playwright, required where
PDR_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

from browser_support import CHROMIUM, CHROMIUM_ARGS, require_browser, settle
from openai_server import OpenAIServer
from test_state_browser import serving_with, stored_runs

require_browser()
from playwright.sync_api import expect, sync_playwright  # noqa: E402

NARROW = {"width": 800, "height": 1400}
LONG_QUESTION = "A farmer has 17 cows and buys 3 more each week. " * 30 + "How many after 10?"

# Elements drawn (not in a closed expander or tab) whose content is wider than their box:
# the text of each, cut by the page.
_CUT = """() => {
  const cut = [];
  const selectors = ['[data-testid=stMetricValue]', '[data-testid=stMetricLabel]',
                     '[data-testid=stDataFrame] .dvn-scroller', 'button'];
  for (const selector of selectors) {
    for (const el of document.querySelectorAll(selector)) {
      if (el.offsetParent === null || el.clientWidth === 0) continue;
      for (const part of [el, ...el.querySelectorAll('*')]) {
        if (part.clientWidth > 0 && part.scrollWidth > part.clientWidth + 1) {
          cut.push(`${selector}: ${el.textContent.slice(0, 40)} ` +
                   `(${part.scrollWidth} > ${part.clientWidth} px)`);
          break;
        }
      }
    }
  }
  return cut;
}"""


def test_nothing_is_cut_at_800_px_and_a_long_question_folds(tmp_path):
    db = tmp_path / "runs.sqlite"
    with OpenAIServer() as server:
        [trace] = stored_runs(db, server, [LONG_QUESTION], method="pdr", width=3, depth=2,
                              total_budget=100_000)
        with serving_with(db, tmp_path, server) as url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport=NARROW)
            page.goto(url)
            expect(page.get_by_text("Worst-case B_total")).to_be_visible(timeout=30_000)
            settle(page)
            assert page.evaluate(_CUT) == []

            page.goto(f"{url}/history?run={trace.id}")
            expect(page.get_by_text("Final answer:")).to_be_visible(timeout=30_000)
            settle(page)
            assert page.evaluate(_CUT) == []
            # the question shows its start; the whole of it behind "Show the whole question"
            shown = page.locator("p").filter(has_text="Question:")
            expect(shown).to_contain_text("A farmer has 17 cows")
            expect(shown).not_to_contain_text("How many after 10?")
            whole = page.locator("[data-testid=stExpander]").filter(
                has_text="Show the whole question")
            whole.get_by_text("Show the whole question").click()
            expect(whole.get_by_text("How many after 10?")).to_be_visible()
            browser.close()
