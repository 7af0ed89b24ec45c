"""In a real Chromium: a run whose model wrote images, links and bare URLs (in its answers,
its text, its question) shows them as text. The page holds no img or a element from them,
and the browser never fetches the planted pixel (a listener on 127.0.0.1 logs requests)."""

from __future__ import annotations

from browser_support import CHROMIUM, CHROMIUM_ARGS, require_browser, serving_app
from conftest import run_fake
from openai_server import OpenAIServer

from pdr_core.config import RunConfig
from pdr_core.store import Store
from pdr_core.testing import FakeProvider

require_browser()
from playwright.sync_api import expect, sync_playwright  # noqa: E402


def test_model_written_images_and_links_stay_text(tmp_path):
    db = tmp_path / "runs.sqlite"
    with OpenAIServer() as pixel_host:
        pixel = f"{pixel_host.url}/pixel.png?leak=1"
        hostile = (f"`![]({pixel})` [click](http://evil.example/a) http://evil.example/b "
                   f"<{pixel}> www.evil.example")
        run_fake(RunConfig(method="vote", width=2),
                 FakeProvider(answer=lambda messages, seed: hostile),
                 sink=Store(db).writer(), question=f"What is ![]({pixel})?",
                 reference=None)
        run_id = Store(db).list_runs()[0].id
        with serving_app(db, tmp_path / "app.log") as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(f"{url}/history?run={run_id}")
            expect(page.get_by_text("Final answer:")).to_be_visible(timeout=60_000)
            main = page.locator("[data-testid='stMain']")
            # the rendered markdown, not the History table's grid cells (drawn on a canvas,
            # their DOM copies hidden), which may come first in the page
            shown = main.locator("[data-testid=stMarkdownContainer]")
            expect(shown.get_by_text("leak=1").first).to_be_visible(timeout=30_000)
            expect(shown.get_by_text("evil.example/a").first).to_be_visible()
            page.wait_for_timeout(1500)
            assert main.locator("img").count() == 0
            hrefs = main.locator("a").evaluate_all("links => links.map(a => a.href)")
            assert not [h for h in hrefs if "evil" in h or "leak" in h or "pixel" in h], hrefs
            browser.close()
        assert pixel_host.requests == []  # the browser never fetched the pixel
