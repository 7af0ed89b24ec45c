"""PDR Inspector: the Streamlit entry point. Pages live in pages/ and stay thin."""

from __future__ import annotations

import streamlit as st

from pdr_core.store import StoreError
from ui.components import settle_process
from ui.state import init_session

st.set_page_config(page_title="PDR Inspector", page_icon=":material/account_tree:", layout="wide")
PRESENTING = st.query_params.get("present") == "1"  # one run for an audience, no navigation

# Streamlit forgets a widget's value when its page is not shown; re-assigning the value
# keeps the question and settings when a person switches pages and comes back.
# (The Run and Settings pages keep theirs with ui.state.kept.)
KEPT = ("prompts_set", "prompts_name", "prompt_system", "prompt_draft", "prompt_summary",
        "prompt_refine", "prompt_sr_refine")
init_session()
for key in KEPT:
    if key in st.session_state:
        st.session_state[key] = st.session_state[key]

navigation = st.navigation(
    [
        st.Page("pages/run.py", title="Run", icon=":material/play_arrow:", default=True),
        st.Page("pages/history.py", title="History", icon=":material/history:"),
        st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
        st.Page("pages/evaluate.py", title="Evaluate", icon=":material/science:"),
        st.Page("pages/prompts.py", title="Prompts", icon=":material/edit_note:"),
        st.Page("pages/settings.py", title="Settings", icon=":material/settings:"),
    ],
    # Presentation mode (?present=1) shows one run and nothing to navigate to.
    position="hidden" if PRESENTING else "sidebar",
)
try:
    navigation.run()
except StoreError as exc:
    # A damaged, read-only or unreadable run store: one line that says what to do, never a
    # traceback with the paths of the code.
    st.error(str(exc))
settle_process()
