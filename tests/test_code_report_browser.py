"""A code run's HTML report in a real headless Chromium, offline: each program's test
results show, and the model's text (a hostile stderr) stays text.

Same guard as tests/test_browser.py: without Chromium these tests skip, unless
PDR_REQUIRE_BROWSER=1 (CI) makes them required.
"""

from __future__ import annotations

from browser_support import CHROMIUM, CHROMIUM_ARGS, require_browser
from test_code_report import HOSTILE, HOSTILE_CODE, PROGRAMS, code_trace

from pdr_core.render.report import write_report

require_browser()
from playwright.sync_api import expect, sync_playwright  # noqa: E402


def test_the_report_shows_each_programs_tests_in_a_browser(tmp_path):
    trace = code_trace()
    path = write_report(trace, tmp_path / "report.html")
    dialogs: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(offline=True).new_page()
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(path.as_uri())
        section = page.locator(f"#n{[n.id for n in trace.nodes].index('r1-draft-0')}")
        section.locator("summary").first.click()
        rows = section.locator("table.tests tbody tr")
        expect(rows).to_have_count(7)
        expect(section.locator("table.tests tr.bad")).to_have_count(3)
        expect(rows.nth(1)).to_contain_text("the candidate gave True")
        expect(section.locator(".test-facts")).to_contain_text("4 of 7 tests passed")
        # The program is highlighted, and its hostile comment is text, not markup.
        program = section.locator("pre.code")
        expect(program.locator("span.hl-kw", has_text="def")).to_have_count(2)
        expect(program.locator("span.hl-com")).to_have_text(HOSTILE_CODE)
        tested = next(n for n in trace.nodes if n.id == "r1-draft-0").answer
        assert tested.endswith(PROGRAMS[0]) and program.text_content() == tested
        assert program.locator("script").count() == 0
        colours = program.evaluate("pre => [...pre.querySelectorAll('span.hl-kw, span.hl-com')]"
                                   ".map(s => getComputedStyle(s).color)"
                                   ".concat(getComputedStyle(pre).color)")
        assert len(set(colours)) == 3, colours  # keyword, comment and plain text differ
        section.locator("details summary", has_text="stderr").click()
        expect(section.locator("details pre", has_text="alert")).to_contain_text(HOSTILE)
        looping = page.locator(f"#n{[n.id for n in trace.nodes].index('r1-draft-1')}")
        looping.locator("summary").first.click()
        expect(looping.locator(".test-facts")).to_contain_text("limit hit: wall clock 1.5s")
        browser.close()
    assert dialogs == []
