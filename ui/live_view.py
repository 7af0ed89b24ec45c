"""A run that may still be running, shown live wherever it is opened (the Run page, History,
a reloaded tab): its view refreshes while the store says it runs, whichever process or
session started it, and the page is drawn once more when it ends."""

from __future__ import annotations

import streamlit as st

from pdr_core.render.textfmt import inert
from pdr_core.store import RunNotFound
from pdr_core.trace import Trace
from ui.components import get_store, jobs, load_trace
from ui.run_view import render_run_view
from ui.state import run_key

REFRESH_SECONDS = 0.5
WATCH_SECONDS = 2.0


def live_run_view(trace: Trace, prefix: str, link: bool = False) -> None:
    """The run view of `trace`; while it runs, refreshed on a timer, with what is in
    flight, and the whole page drawn again once it has ended."""
    if trace.status != "running":
        _show_run(trace, prefix, link)
        return

    @st.fragment(run_every=REFRESH_SECONDS)
    def refreshed() -> None:
        try:
            current = load_trace(trace.id)
        except RunNotFound:
            st.rerun()
        _show_run(current, prefix, link)
        if current.status != "running":
            st.rerun()  # the run ended: draw the whole page once more, without the timer

    refreshed()


def cancel_control(run_id: str, prefix: str) -> None:
    """A Cancel button for a run this server process runs; what finished is kept."""
    job = jobs().get(run_id)
    if job is None or not job.running:
        return
    if st.button("Cancel", key=run_key(run_id, prefix, "cancel"),
                 help="Stop the run: finished calls are kept, and it can be resumed."):
        job.cancel()
        job.wait(timeout=10)
        st.rerun()


def watch_running(run_ids: list[str]) -> None:
    """Draw the page again as soon as one of `run_ids` (runs listed as running) has
    ended, so a list of runs shows their end without a reload."""
    if not run_ids:
        return

    @st.fragment(run_every=WATCH_SECONDS)
    def watch() -> None:
        store = get_store()
        for run_id in run_ids:
            try:
                if store.revision(run_id)[0] != "running":
                    st.rerun()
            except RunNotFound:
                st.rerun()

    watch()


def _show_run(trace: Trace, prefix: str, link: bool) -> None:
    render_run_view(trace, prefix=prefix, link=link)
    job = jobs().get(trace.id)
    if job is not None and job.error is not None:
        st.error(inert(f"The run stopped on an unexpected error: {job.error!r}"))
    in_flight = [n for n in trace.nodes if n.status == "running"]
    if in_flight:
        st.subheader("In flight")
        for node in in_flight:
            with st.expander(f"{inert(node.id)} · streaming", expanded=len(in_flight) <= 2):
                st.text(node.text[-2000:] or "…")
