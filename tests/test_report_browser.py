"""The HTML report in a real headless Chromium, offline: figures, clicks, replay, no scripts
of the model's running.

Same guard as tests/test_browser.py: without Chromium these tests skip, unless
PDR_REQUIRE_BROWSER=1 (CI) makes them required.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS, require_browser
from test_report import HOSTILE, hostile_trace

from pdr_core.render.report import write_report
from pdr_core.trace import Trace
from pdr_core.trace_import import trace_from_dict

require_browser()
from playwright.sync_api import expect, sync_playwright  # noqa: E402


def retimed(trace: Trace) -> Trace:
    """The trace with believable timings: about 50 s, parallel calls overlapping, so a
    replay at 20x takes about 2.5 s (the fake provider finishes in a millisecond)."""
    data = trace.to_dict()
    base = datetime.fromisoformat(data["created_at"])
    end = 0.0
    for node in data["nodes"]:
        column = 2 * (node["round"] - 1) + (node["stage"] == "distill")
        start = 10.0 * column + 0.8 * node["branch"]
        finish = start + 5.0 + 1.2 * node["branch"]
        node["started_at"] = (base + timedelta(seconds=start)).isoformat()
        node["finished_at"] = (base + timedelta(seconds=finish)).isoformat()
        end = max(end, finish)
    data["finished_at"] = (base + timedelta(seconds=end)).isoformat()
    return trace_from_dict(data)


@pytest.fixture
def report(tmp_path):
    trace = retimed(hostile_trace())
    return trace, write_report(trace, tmp_path / "report.html")


def tree_point(page, node_id: str) -> tuple[float, float]:
    """Where a node's marker is on screen, from the plotted figure's own axes."""
    return page.evaluate(
        """(id) => {
          const gd = document.getElementById("fig-tree");
          const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
          const box = gd.getBoundingClientRect();
          for (const trace of gd._fullData) {
            const k = (trace.customdata || []).indexOf(id);
            if (k >= 0 && String(trace.mode).includes("markers")) {
              return [box.left + xa._offset + xa.l2p(trace.x[k]),
                      box.top + ya._offset + ya.l2p(trace.y[k])];
            }
          }
          return null;
        }""",
        node_id,
    )


def test_report_offline_tree_click_and_replay(report, tmp_path):
    trace, path = report
    total = len(trace.nodes)
    attempts: list[str] = []
    dialogs: list[str] = []
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(offline=True, viewport={"width": 1366, "height": 900})

        def guard(route):
            if route.request.url.startswith("file:"):
                route.continue_()
            else:
                attempts.append(route.request.url)
                route.abort()

        context.route("**/*", guard)
        page = context.new_page()
        page.on("request", lambda r: None if r.url.startswith("file:")
                else attempts.append(r.url))
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(path.as_uri())

        # The tree renders with a marker per node.
        points = page.locator("#fig-tree.js-plotly-plot .scatterlayer .trace .points path")
        expect(points).to_have_count(total, timeout=20_000)
        expect(page.locator("#fig-timeline.js-plotly-plot .barlayer")).to_have_count(1)
        # The final node is open: its text is visible, hostile text shows literally.
        final = next(n for n in trace.nodes if n.stage == "final")
        final_output = page.locator(f"#n{trace.nodes.index(final)} pre.output")
        expect(final_output).to_be_visible()
        expect(final_output).to_contain_text("right-to-left override")
        assert page.locator("img, iframe, a[href^='javascript']").count() == 0
        page.screenshot(path=tmp_path / "1-loaded.png")

        # Clicking a closed draft's marker opens its section and scrolls to it.
        draft = next(n for n in trace.nodes if n.stage == "draft" and "<img" in n.id)
        section = page.locator(f"#n{trace.nodes.index(draft)}")
        expect(section).not_to_have_attribute("open", "")
        x, y = tree_point(page, draft.id)
        # Bring the marker on screen first: the mouse clicks only what the viewport shows.
        page.evaluate("(y) => window.scrollBy(0, y - window.innerHeight / 2)", y)
        x, y = tree_point(page, draft.id)
        page.mouse.move(x, y)
        page.mouse.click(x, y)
        expect(section).to_have_attribute("open", "", timeout=5_000)
        expect(section.locator("pre.output")).to_be_in_viewport()
        shown = section.locator("pre.output").inner_text()
        for hostile in HOSTILE[:4]:
            assert hostile in shown
        assert "nul\u2400byte" in shown
        box = section.bounding_box()
        assert box is not None and box["width"] <= 1366  # the 50,000-character line wraps
        page.screenshot(path=tmp_path / "2-clicked.png")

        # Replay at 20x: nodes appear a few at a time, text streams, all end up shown.
        page.locator("#replay-speed").select_option("20")
        page.locator("#tree").scroll_into_view_if_needed()
        page.locator("#replay-restart").click()
        cards = page.locator(".replay-card:not([hidden])")
        seen_counts, streamed = set(), False
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            count, partial = page.evaluate(
                """() => [document.querySelectorAll(".replay-card:not([hidden])").length,
                          document.querySelectorAll(".replay-card.running").length]""")
            seen_counts.add(count)
            streamed = streamed or partial > 0
            if count == total and page.locator("#replay-play").inner_text() == "▶ Replay":
                break
            if count >= total // 2 and not (tmp_path / "3-replay.png").exists():
                page.screenshot(path=tmp_path / "3-replay.png")
            page.wait_for_timeout(40)
        assert max(seen_counts) == total, seen_counts
        middle = {c for c in seen_counts if 0 < c < total}
        assert len(middle) >= 3, f"nodes did not appear progressively: {sorted(seen_counts)}"
        assert streamed, "no node was ever shown while streaming"
        expect(cards).to_have_count(total)
        expect(page.locator(".replay-card.running")).to_have_count(0)
        expect(page.locator("#replay-clock")).to_contain_text(f"{total} of {total} nodes")
        page.screenshot(path=tmp_path / "4-replayed.png", full_page=True)

        # Printing opens every node and redraws the figures to fit the paper.
        page.emulate_media(media="print")
        page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
        expect(page.locator("details.node[open]")).to_have_count(total)
        widths = page.evaluate("""() => Array.from(document.querySelectorAll(
            ".fig .main-svg:first-child"), (svg) => svg.getBoundingClientRect().width)""")
        assert len(widths) == 3 and max(widths) <= 700, widths
        page.pdf(path=tmp_path / "report.pdf")
        browser.close()

    assert attempts == [], attempts
    assert dialogs == [], dialogs
    assert errors == [], errors
    for name in ("1-loaded", "2-clicked", "4-replayed"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000
