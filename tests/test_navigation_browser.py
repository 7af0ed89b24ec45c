"""A page opened by its address, as the first thing a fresh server draws, shows only the
app's own menu: not Streamlit's lowercase list of the pages/ folder (which it draws until
some run has declared st.navigation), and no menu at all in presentation mode.

Same guard as test_browser.py: skipped without Chromium and Playwright, required where
PDR_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

from browser_support import CHROMIUM, CHROMIUM_ARGS, require_browser, serving_app, settle

require_browser()
from playwright.sync_api import expect, sync_playwright  # noqa: E402

from ui.navigation import PAGES  # noqa: E402

TITLES = [title for _, title, _ in PAGES]
# Streamlit's own list names the entry script and each file in pages/ by its file name.
FOLDER_LIST = ["app", *sorted(script.removeprefix("pages/").removesuffix(".py")
                              for script, _, _ in PAGES)]


def first_load(tmp_path, address: str) -> tuple[list[str], str]:
    """Open `address` as the first page a new server draws: the link texts of the sidebar
    menu, and the page's heading."""
    with serving_app(tmp_path / "runs.sqlite", tmp_path / "streamlit.log") as url, \
            sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(url + address)
            heading = page.get_by_role("heading", name="History").first
            expect(heading).to_be_visible(timeout=30_000)
            settle(page)
            links = page.locator("[data-testid=stSidebarNav] a")
            texts = [" ".join(t.split()) for t in links.all_inner_texts()]
            return texts, heading.inner_text()
        finally:
            browser.close()


def test_a_page_opened_by_its_address_shows_only_the_apps_menu(tmp_path):
    links, heading = first_load(tmp_path, "/history")
    assert heading.startswith("History")
    assert [text.split()[-1] for text in links] == TITLES  # icon name, then title
    assert not any(text in FOLDER_LIST for text in links), links


def test_presentation_mode_opened_by_its_address_shows_no_menu(tmp_path):
    links, _ = first_load(tmp_path, "/history?present=1")
    assert links == []
