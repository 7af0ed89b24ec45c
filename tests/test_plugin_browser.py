"""A method defined in a test file and registered by entry point (the docs' worked example,
installed as a dist-info folder) runs from the command line and renders in a real headless
Chromium: History opens its run with the method's name, its tree draws every node the
method made, and a click on one of them selects it.

Same guard as test_browser.py: skipped without Chromium and Playwright, required where
PDR_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import re

from browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    keyed,
    require_browser,
    serving_app,
    settle,
)
from openai_server import OpenAIServer
from test_cli import cli
from test_method_plugins import QUESTION, REF, _env, _fields, installed, plugin_dir  # noqa: F401 (fixtures)
from test_tree_browser import click

from pdr_core.store import Store

require_browser()
from playwright.sync_api import expect, sync_playwright  # noqa: E402

VIEWPORT = {"width": 1400, "height": 1400}


def test_an_entry_point_method_runs_from_the_cli_and_renders_in_the_browser(
        installed, tmp_path):  # noqa: F811 (the fixture)
    db = tmp_path / "runs.sqlite"
    with OpenAIServer() as server:
        result = cli("run", QUESTION, "--method", "best-of-length", "--n", "3", "--base-url",
                     server.base_url, "--model", "fake-model", db=db,
                     env_extra=_env(installed))
        assert result.returncode == 0, result.stderr
        run_id = _fields(result)["run"]
        trace = Store(db).get_trace(run_id)
        assert trace.config["method"] == REF and trace.status == "completed"
        node_ids = [n.id for n in trace.nodes]
        assert len(node_ids) >= 3
        env = {"OPENAI_BASE_URL": server.base_url, "PDR_MODEL": "fake-model",
               **_env(installed)}
        with serving_app(db, tmp_path / "streamlit.log", env) as url, \
                sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(f"{url}/history?run={run_id}")
            expect(page.get_by_text(f"Question: {QUESTION}")).to_be_visible(timeout=30_000)
            settle(page)
            # the run box names the run by its method
            expect(page.locator(".st-key-history_open input")).to_have_value(
                re.compile(re.escape(REF)))
            chart = f"history_tree_{run_id}"
            expect(page.locator(f"{keyed(chart)} .js-plotly-plot .points path").first
                   ).to_be_attached(timeout=20_000)
            drawn = page.evaluate(
                """(key) => {
                  const plot = document.querySelector(`[class*="st-key-${key}"] .js-plotly-plot`);
                  return plot ? plot.data.flatMap((t) => t.customdata || []) : [];
                }""", chart)
            assert sorted(map(str, drawn)) == sorted(node_ids)
            click(page, run_id, node_ids[-1])
            browser.close()
