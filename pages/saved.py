"""Saved runs: pick any stored run and inspect it in the run view."""

from __future__ import annotations

import streamlit as st

from pdr_core.store import RunNotFound
from ui.components import get_store, render_run_view, short

st.title("Saved runs")
store = get_store()
runs = store.list_runs(limit=500)
if not runs:
    st.info("No runs stored yet: start one on the Run page or with `python -m pdr_core run`.")
    st.stop()

labels = {
    r.id: f"{r.created_at[:19].replace('T', ' ')} · {r.method} · {r.status} · "
          f"{short(r.name or r.question, 70)}"
    for r in runs
}
run_id = st.selectbox("Run", list(labels), format_func=labels.get, key="saved_run")
try:
    trace = store.get_trace(run_id)
except RunNotFound:
    st.error("That run was deleted meanwhile.")
    st.stop()
st.markdown(f"**Question:** {trace.question}")
if trace.reference_answer is not None:
    st.caption(f"Reference answer: {trace.reference_answer}")
render_run_view(trace, prefix="saved")
