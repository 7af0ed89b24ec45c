"""The matched-budget baseline, one click from a run: a single pass at the run's B_seq
(pdr_core.run.baseline), started as a job like a resume or a fork."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from pdr_core.config import ConfigError
from pdr_core.providers import ProviderError
from pdr_core.render.textfmt import inert
from pdr_core.run.baseline import baseline_config
from pdr_core.run.jobs import RunJob
from pdr_core.store import Store
from pdr_core.trace import Trace
from ui.endpoints import make_provider, run_endpoint
from ui.state import run_key


def render_baseline(trace: Trace, prefix: str, store: Store,
                    start: Callable[[RunJob], None]) -> None:
    """The button "Run a single pass at this run's B_seq", with the model's context that
    caps it; `start` starts the job (and shows it where the caller wants)."""
    if trace.status != "completed" or trace.budget.b_seq <= 0:
        return
    b_seq = trace.budget.b_seq
    with st.expander(f"Matched-budget baseline: a single pass at this run's B_seq ({b_seq:,} "
                     "tokens)"):
        context = st.number_input(
            "Model context (tokens; 0 = not capped)", 0, 10_000_000, 0, step=1024,
            key=run_key(trace.id, prefix, "baseline_context"),
            help="A single pass cannot write more than the model's context minus its prompt; "
                 "the budget is capped there, and the run says so. The local model's own "
                 "context is used when this is 0.")
        try:
            _, note = baseline_config(trace, context or None)
        except ConfigError as exc:
            st.error(inert(f"Cannot run the baseline: {exc}"))
            return
        if note:
            st.warning(inert(f"The baseline's output budget is {note}."))
        settings = run_endpoint(trace, run_key(trace.id, prefix, "baseline_call"))
        if st.button("Run a single pass at this run's B_seq",
                     key=run_key(trace.id, prefix, "baseline"), disabled=settings is None):
            try:
                job, _ = RunJob.matched_baseline(store, trace, make_provider(settings),
                                                 context or None)
            except (ConfigError, ProviderError) as exc:
                st.error(inert(f"Cannot run the baseline: {exc}"))
                return
            start(job)
