"""PDR Inspector: the Streamlit entry point. Pages live in pages/ and stay thin; the frame
around them (page config, session, menu) is ui.navigation."""

from __future__ import annotations

from ui.navigation import run_app

run_app()
