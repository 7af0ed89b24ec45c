"""Compare two stored runs: settings, results, nodes side by side, final outputs' diff."""

from __future__ import annotations

from typing import Any

import streamlit as st

from pdr_core.render.compare import NodeSide, StageStats, compare_runs, final_outputs, stage_figure
from pdr_core.render.diffs import diff_html, diff_stats
from pdr_core.render.textfmt import inert, model_markdown
from pdr_core.run.baseline import matched_note, source_of
from pdr_core.store import RunNotFound
from ui.baseline import render_baseline
from ui.components import STATUS_BADGE, get_store, load_trace, run_label, start_job
from ui.navigation import through_app

through_app()

PENDING = "compare_pending"  # (A, B) to show on the next draw

st.title("Compare runs")
store = get_store()
runs = store.list_runs(limit=500)
if len(runs) < 2:
    have = "no run" if not runs else "one run"
    st.info(f"Comparing needs two stored runs and there is {have}: store another run on the "
            "Run page or with `python -m pdr_core run`.")
    st.stop()

labels = {r.id: run_label(r, 70) for r in runs}
ids = list(labels)
# A baseline started here opens beside its source run (set before the pickers are drawn).
pending = st.session_state.pop(PENDING, None)
if pending and all(run_id in labels for run_id in pending):
    st.session_state["compare_a"], st.session_state["compare_b"] = pending
left, right = st.columns(2)
# A is the baseline (the older of the two newest runs), B the newer: the diff reads A -> B.
a_id = left.selectbox("Run A (baseline)", ids, index=1, format_func=labels.get, key="compare_a")
b_id = right.selectbox("Run B", ids, index=0, format_func=labels.get, key="compare_b")
if a_id == b_id:
    st.info("Pick two different runs.")
    st.stop()
try:
    trace_a, trace_b = load_trace(a_id), load_trace(b_id)
except RunNotFound:
    st.error("One of these runs was deleted meanwhile.")
    st.stop()

result = compare_runs(trace_a, trace_b)
if result.same_question:
    st.markdown(f"**Question:** {model_markdown(trace_a.question)}")
else:
    st.warning("The two runs answer different questions.")
    st.markdown(f"**A:** {model_markdown(trace_a.question)}")
    st.markdown(f"**B:** {model_markdown(trace_b.question)}")


def _beside(source_id: str):
    """Start a baseline job and show it here, as run B beside its source as run A."""
    def start(job) -> None:
        if start_job(job):
            st.session_state[PENDING] = (source_id, job.run_id)
            st.rerun()
    return start


def _text(value: Any) -> str:
    """One cell as text: a column of mixed types would not convert to a table."""
    if value is None or value == "":
        return "—"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def _mark(correct: bool | None) -> str:
    return {True: "✓ right", False: "✗ wrong", None: "—"}[correct]


# --- settings -------------------------------------------------------------------------------
st.subheader("Settings")
if result.differences:
    st.caption("Differ: " + ", ".join(result.differences))
else:
    st.caption("Same settings.")
st.dataframe(
    [{"setting": s.key, "A": _text(s.a), "B": _text(s.b), "differs": "≠" if s.differs else ""}
     for s in result.settings],
    hide_index=True, key="compare_settings",
)

# --- results --------------------------------------------------------------------------------
st.subheader("Results")
# Green only when the cheaper run was right: a saving on a wrong answer is no success.
{True: st.success, False: st.warning}.get(result.verdict.cheaper_correct, st.info)(
    inert(result.verdict.text))
cols = st.columns(2)
for col, name, res in ((cols[0], "A", result.a), (cols[1], "B", result.b)):
    col.markdown(f"**Run {name}** · `{res.run_id}` · {res.method} · "
                 f"{STATUS_BADGE.get(res.status, res.status)}")
outcome = [
    ("final answer", result.a.final_answer, result.b.final_answer),
    ("correct", _mark(result.a.correct), _mark(result.b.correct)),
    ("B_seq", f"{result.a.b_seq:,}", f"{result.b.b_seq:,}"),
    ("B_total", f"{result.a.b_total:,}", f"{result.b.b_total:,}"),
    ("calls", result.a.calls, result.b.calls),
    ("failed calls", result.a.failed, result.b.failed),
    ("wall seconds", *(f"{r.seconds:.2f}" if r.seconds is not None else None
                       for r in (result.a, result.b))),
    ("final node", result.a.final_node_id, result.b.final_node_id),
    ("stopped by", result.a.stop_reason, result.b.stop_reason),
]
st.dataframe([{"": label, "A": _text(a), "B": _text(b)} for label, a, b in outcome],
             hide_index=True, key="compare_results")

# --- matched-budget baseline ----------------------------------------------------------------
names = {r.id: r.name for r in runs}
for name, source, other, baseline in (("B", trace_a, "A", trace_b), ("A", trace_b, "B", trace_a)):
    if source_of(names.get(baseline.id)) == source.id:
        st.info(inert(f"Run {name} is the matched-budget baseline of run {other}: "
                      f"{matched_note(source, baseline)}."))
        break
else:
    for name, trace in (("A", trace_a), ("B", trace_b)):
        if source_of(names.get(trace.id)) is None:
            st.caption(f"Run {name}:")
            render_baseline(trace, f"compare_{name.lower()}", store, _beside(trace.id))

# --- aligned nodes --------------------------------------------------------------------------
st.subheader("Nodes, aligned by round, stage and branch")
st.caption("A blank side: that run has no node at this position. Draft, refine and final "
           "share a position, so differently shaped runs still line up.")


def _node_cells(name: str, side: NodeSide | None) -> dict[str, Any]:
    if side is None:
        return {f"{name} node": None, f"{name} answer": None, f"{name} correct": None,
                f"{name} status": None, f"{name} tokens": None, f"{name} s": None}
    status = side.status + (" (reused)" if side.reused else "")
    return {
        f"{name} node": side.id,
        f"{name} answer": side.label if side.answer is not None else None,
        f"{name} correct": _mark(side.correct) if side.correct is not None else None,
        f"{name} status": status,
        f"{name} tokens": side.tokens if side.call else None,
        f"{name} s": round(side.seconds, 2) if side.seconds is not None else None,
    }


st.dataframe(
    [{"round": row.round, "stage": row.stage, "branch": row.branch,
      **_node_cells("A", row.a), **_node_cells("B", row.b),
      "same answer": {True: "=", False: "≠", None: ""}[row.same_answer]}
     for row in result.rows],
    hide_index=True, key="compare_rows",
)

# --- per stage ------------------------------------------------------------------------------
st.subheader("Per stage")


def _stage_cells(name: str, stats: StageStats | None) -> dict[str, Any]:
    if stats is None:
        return {f"{name} calls": None, f"{name} tokens": None, f"{name} s": None,
                f"{name} answers": None}
    calls = f"{stats.calls}" + (f" ({stats.failed} failed)" if stats.failed else "")
    return {
        f"{name} calls": calls,
        f"{name} tokens": stats.tokens,
        f"{name} s": round(stats.seconds, 2) if stats.seconds is not None else None,
        f"{name} answers": ", ".join(f"{answer} ×{count}" for answer, count in stats.answers),
    }


st.dataframe(
    [{"round": row.round, "stage": row.stage, **_stage_cells("A", row.a),
      **_stage_cells("B", row.b)} for row in result.stages],
    hide_index=True, key="compare_stages",
)
tokens_tab, seconds_tab = st.tabs(["Tokens", "Wall seconds"])
with tokens_tab:
    st.plotly_chart(stage_figure(result, "tokens"), key="compare_tokens_chart")
with seconds_tab:
    st.plotly_chart(stage_figure(result, "seconds"), key="compare_seconds_chart")

# --- final outputs --------------------------------------------------------------------------
st.subheader("Final outputs")
text_a, text_b = final_outputs(trace_a, trace_b)
if not text_a and not text_b:
    st.info("Neither run has a finished final node to compare.")
else:
    added, removed = diff_stats(text_a, text_b)
    st.markdown(f"**{inert(result.a.final_node_id or 'no node')} (A) → "
                f"{inert(result.b.final_node_id or 'no node')} (B)** · "
                f":green[+{added}] :red[−{removed}] words")
    st.caption("Where the last round has several nodes, the first whose answer won the vote.")
    # diff_html escapes every piece of model text; nothing else here is rendered as HTML.
    st.html(diff_html(text_a, text_b))
    for name, text in (("A", text_a), ("B", text_b)):
        with st.expander(f"Run {name}'s final output"):
            # st.markdown escapes raw HTML, so model text cannot inject markup or script.
            st.markdown(model_markdown(text) if text else "_(no text)_")
