"""Presentation mode (`?present=1` with `?run=ID` on History): one run for an audience, the
tree large beside a plain explanation of PDR, a scrubber through the run's time, and no
editing control."""

from __future__ import annotations

import streamlit as st

from pdr_core.render.replay import duration, trace_at
from pdr_core.render.tree import tree_figure
from pdr_core.trace import Trace
from ui.components import show_question
from ui.run_view import render_header
from ui.state import run_key

TREE_HEIGHT = 720
PDR_EXPLAINED = """**What you are looking at: Parallel-Distill-Refine (PDR)**

1. **Parallel**: the model writes several drafts of an answer at once (the first column).
2. **Distill**: those drafts are boiled down to a short workspace: what they agree on,
   where they differ, what is still open (the squares).
3. **Refine**: the next round of drafts starts from that workspace instead of from
   scratch, and the last round gives the final answer.

Each dot is one model call; its colour is the answer it reached, and a ✓ or ✗ says whether
that answer is right. The workspace stays short however many drafts there are, so the
model thinks more without ever reading a longer context."""


def presenting() -> bool:
    """Whether the address asks for presentation mode."""
    return st.query_params.get("present") == "1"


def render_presentation(trace: Trace) -> None:
    """The run at the moment the scrubber names (its end by default), its tree large, and
    the explanation beside it."""
    show_question(trace.question)
    total = duration(trace)
    at, step = total, max(total / 200, 0.01)
    if total > 0:
        at = st.slider("Replay: move through the run", 0.0, total, total, step=step,
                       format="%.1f s", key=run_key(trace.id, "present", "at"))
    # The slider's last step can fall a rounding short of the end: that step is the end.
    shown = trace if at >= total - step / 2 else trace_at(trace, at)
    render_header(shown, seconds=at)
    tree, explained = st.columns([3, 1])
    tree.plotly_chart(tree_figure(shown), key=run_key(trace.id, "present", "tree"),
                      height=TREE_HEIGHT, config={"displaylogo": False})
    explained.markdown(PDR_EXPLAINED)
