"""The app's frame, declared once: page config, the session, the menu and the page the
address names. app.py runs it; so does a page that Streamlit ran alone.

Streamlit treats a folder named `pages/` beside the entry script as its first kind of
multipage app until some run calls `st.navigation`: until then, opening a page's address
runs that page alone (not app.py) and draws Streamlit's own lowercase list of the folder in
the sidebar. `through_app` is the first thing every page does, and ends that mode.
"""

from __future__ import annotations

import streamlit as st
from streamlit.navigation.page import StreamlitPage
from streamlit.runtime.pages_manager import PagesManager

from pdr_core.store import StoreError
from ui.components import settle_process
from ui.present_view import presenting
from ui.state import init_session

# (script, title, icon) of each page, the first the default.
PAGES = (
    ("pages/run.py", "Run", ":material/play_arrow:"),
    ("pages/history.py", "History", ":material/history:"),
    ("pages/compare.py", "Compare", ":material/compare_arrows:"),
    ("pages/evaluate.py", "Evaluate", ":material/science:"),
    ("pages/prompts.py", "Prompts", ":material/edit_note:"),
    ("pages/settings.py", "Settings", ":material/settings:"),
)
# Streamlit forgets a widget's value when its page is not shown; re-assigning the value
# keeps the question and settings when a person switches pages and comes back.
# (The Run and Settings pages keep theirs with ui.state.kept.)
KEPT = ("prompts_set", "prompts_name", "prompt_system", "prompt_draft", "prompt_summary",
        "prompt_refine", "prompt_sr_refine")


def app_navigation() -> StreamlitPage:
    """Declare the menu and return the page the address names. Presentation mode
    (?present=1) shows one run and nothing to navigate to."""
    return st.navigation(
        [st.Page(script, title=title, icon=icon, default=index == 0)
         for index, (script, title, icon) in enumerate(PAGES)],
        position="hidden" if presenting() else "sidebar",
    )


def run_app() -> None:
    """One run of the app: the frame, then the page the address names."""
    st.set_page_config(page_title="PDR Inspector", page_icon=":material/account_tree:",
                       layout="wide")
    init_session()
    for key in KEPT:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]
    navigation = app_navigation()
    try:
        navigation.run()
    except StoreError as exc:
        # A damaged, read-only or unreadable run store: one line that says what to do, never
        # a traceback with the paths of the code.
        st.error(str(exc))
    settle_process()


def through_app() -> None:
    """When Streamlit ran this page alone (see the module doc), run the app in its place:
    its menu ends Streamlit's `pages/` mode for the server process, and the page is drawn
    inside the app's frame, in this same run (a click that started it still counts)."""
    # Streamlit's own record of that mode; no public call says which mode a run is in.
    if not PagesManager.uses_pages_directory:
        return
    run_app()  # draws this page again, inside the app (the mode has ended)
    st.stop()  # and not a second time here
