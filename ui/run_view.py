"""The run view: header, replay, tree, answer flow, timeline, budget and the node picker."""

from __future__ import annotations

import hashlib
import time
from datetime import datetime

import plotly.graph_objects as go
import streamlit as st

from pdr_core.render.budget_view import budget_rows
from pdr_core.render.flow import answer_flow_figure
from pdr_core.render.graph import column_of, model_groups, node_id_from_point
from pdr_core.render.replay import duration, trace_at
from pdr_core.render.textfmt import inert
from pdr_core.render.timeline import timeline_figure
from pdr_core.render.tree import COLOUR_BY, tree_figure
from pdr_core.run.adaptive import savings
from pdr_core.run.registry import method_registry
from pdr_core.run.selection import fell_back
from pdr_core.tasks import answer_text, final_tests
from pdr_core.trace import Node, Trace
from ui.baseline import render_baseline
from ui.code_view import render_final_program
from ui.components import (
    LATEST,
    LATEST_LABEL,
    STATUS_BADGE,
    get_store,
    metric_row,
    start_and_watch,
)
from ui.links import open_linked_node, publish
from ui.node_view import render_node
from ui.state import run_key


def elapsed(trace: Trace) -> float:
    start = datetime.fromisoformat(trace.created_at)
    end = datetime.fromisoformat(trace.finished_at) if trace.finished_at else None
    if end is None:
        return time.time() - start.timestamp()
    return (end - start).total_seconds()


def render_header(trace: Trace, seconds: float | None = None) -> None:
    """Status, progress, tokens and time of a run, live or saved; `seconds` is the time
    shown when it is not the run's own (a replay shows how far it has played)."""
    budget = trace.budget
    planned = _planned_calls(trace)
    metric_row([
        ("Calls", f"{budget.calls} / {planned}"),
        ("B_total", f"{budget.b_total:,}"),
        ("B_seq", f"{budget.b_seq:,}"),
        ("Elapsed", f"{elapsed(trace) if seconds is None else seconds:.1f} s"),
    ], lead=f"**Status**  \n{STATUS_BADGE.get(trace.status, trace.status)}")
    if trace.status == "running":
        st.progress(min(budget.calls / max(planned, 1), 1.0))
    if trace.final_answer is not None or trace.status == "completed":
        verdict = {True: " · :green[**correct**]", False: " · :red[**incorrect**]",
                   None: ""}[trace.correct]
        # inert: a backtick in an answer would end a code span, and what follows (an image
        # that leaks to its host, a link) would be live
        shown = (inert(answer_text(trace.final_answer, final_tests(trace)))
                 if trace.final_answer is not None else "no answer")
        st.markdown(f"**Final answer:** {shown}{verdict}")
        render_final_program(trace)
        if fell_back(trace.final_selection):  # the model's choice was not used: say so
            st.warning(inert(f"Selected by {trace.final_selection}"))
        elif trace.final_selection:
            st.caption(inert(f"Selected by {trace.final_selection}"))
    if trace.stop_reason == "budget":
        st.warning("The run stopped on its total-token budget.")
    if (saved := savings(trace)) is not None:
        st.caption(saved.caption())
    if trace.error and trace.status != "completed":
        st.error(inert(trace.error))


def _planned_calls(trace: Trace) -> int:
    if (config := trace.known_config) is not None:
        # A registered method's declared schedule; a stored name is never imported.
        method = method_registry().get(config.method)
        return method.planned_calls(config) if method else config.calls
    # An imported trace's odd settings: the recorded schedule, as far as it is one.
    schedule = trace.config.get("width_schedule") or [1]
    return sum(schedule) if isinstance(schedule, list) else 1


REPLAY_SPEEDS = [1, 2, 5, 10, 20]


def render_replay(trace: Trace, prefix: str) -> None:
    """Play a saved run back as it happened: nodes appear in timeline order, text streams."""
    key = run_key(trace.id, prefix, "replay_started")
    with st.expander("Replay (demo mode: plays the saved run, no endpoint needed)"):
        c1, c2, c3 = st.columns([2, 1, 1])
        speed = c1.select_slider("Speed", REPLAY_SPEEDS, value=5,
                                 key=run_key(trace.id, prefix, "replay_speed"),
                                 format_func=lambda v: f"{v}×")
        if c2.button("Play", key=run_key(trace.id, prefix, "replay_play")):
            st.session_state[key] = time.time()
        if c3.button("Stop", key=run_key(trace.id, prefix, "replay_stop")):
            st.session_state.pop(key, None)
        started = st.session_state.get(key)
        if started is None:
            return
        total = duration(trace)

        @st.fragment(run_every=0.25)
        def frame() -> None:
            began = st.session_state.get(key)
            if began is None:
                return
            at = min((time.time() - began) * speed, total)
            past = trace_at(trace, at)
            st.progress(at / total if total else 1.0, text=f"{at:.1f} s of {total:.1f} s")
            render_header(past, seconds=at)
            st.plotly_chart(tree_figure(past), key=run_key(trace.id, prefix, "replay_tree"))
            for node in past.nodes:
                if node.status == "running":
                    st.caption(f"{inert(node.id)} · streaming")
                    st.text(node.text[-600:] or "…")
            if at >= total:
                st.session_state.pop(key, None)
                st.success("Replay finished.")

        frame()


def trace_revision(trace: Trace) -> str:
    """A key that changes whenever anything the run view's figures draw changes: the run's
    outcome and, per node, its status, times, answer and the length of its text."""
    parts = [trace.id, trace.created_at, trace.status, trace.finished_at, trace.final_answer,
             trace.reference_answer, trace.error]
    parts += [(n.id, n.status, n.started_at, n.finished_at, n.answer, len(n.text), n.error)
              for n in trace.nodes]
    return hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()


# cache_resource, not cache_data: cache_data pickles every hit, and unpickling a plotly
# figure validates it again (47 ms for a 120-node tree, against 10 ms to build it). The
# figures are shared read-only: st.plotly_chart copies a figure (to_dict) before sending it.
@st.cache_resource(max_entries=16, show_spinner=False)
def _cached_figures(run_id: str, revision: str, _trace: Trace) -> tuple[go.Figure, go.Figure]:
    return answer_flow_figure(_trace), timeline_figure(_trace)


@st.cache_resource(max_entries=64, show_spinner=False)
def _cached_tree(run_id: str, revision: str, selected: str | None, colour_by: str,
                 _trace: Trace) -> go.Figure:
    return tree_figure(_trace, selected, colour_by)


def run_figures(trace: Trace, selected: str | None = None, colour_by: str = "answer"
                ) -> tuple[go.Figure, go.Figure, go.Figure]:
    """Tree (ringing `selected`), answer flow and timeline of `trace`; a settled run's are
    built once per revision (the tree once per selected node), so selecting a node again
    rebuilds nothing. A running run's change on every refresh: caching those would only
    fill the cache."""
    if trace.status == "running":
        return (tree_figure(trace, selected, colour_by), answer_flow_figure(trace),
                timeline_figure(trace))
    revision = trace_revision(trace)
    return (_cached_tree(trace.id, revision, selected, colour_by, trace),
            *_cached_figures(trace.id, revision, trace))


def render_run_view(trace: Trace, prefix: str = "view", link: bool = False) -> None:
    """The run view: tree, answer flow, timeline, budget, node detail and diffs. With
    `link`, the address names the node and tab shown (see ui.links)."""
    render_header(trace)
    if trace.status != "running" and trace.nodes:
        render_replay(trace, prefix)
    render_baseline(trace, prefix, get_store(), start_and_watch)
    picker_key = run_key(trace.id, prefix, "node")
    if link:
        open_linked_node(picker_key, [n.id for n in trace.nodes])
    options, shown = _picker_state(trace, picker_key)
    _render_figures(trace, prefix, shown, picker_key)
    if shown is None:
        st.info("No node yet.")
        return
    choice = _render_picker(trace, prefix, options, shown, picker_key)
    if choice == LATEST:
        st.caption(f"Showing {inert(_node_label(trace.node(shown)))}")
    tab = render_node(trace, trace.node(shown), prefix, link)
    if link:
        publish(None if choice == LATEST else choice, tab)


def _picker_state(trace: Trace, picker_key: str) -> tuple[list[str], str | None]:
    """The node picker's options and the node shown (None while there is none).

    A live run's picker starts on "latest": it follows the newest finished node while the
    run grows, without the page setting the widget on every refresh (which races the
    browser). A saved run has nothing to follow: it opens on its last node."""
    ids = [n.id for n in trace.nodes]
    finished = [n.id for n in trace.nodes if n.status != "running"]
    latest = finished[-1] if finished else (ids[0] if ids else None)
    live = trace.status == "running"
    options = [LATEST, *ids] if live else ids
    if st.session_state.get(picker_key, LATEST) not in options:
        st.session_state[picker_key] = LATEST if live else latest
    chosen = st.session_state.get(picker_key, LATEST)
    return options, latest if chosen == LATEST else chosen


def _render_figures(trace: Trace, prefix: str, shown: str | None, picker_key: str) -> None:
    """The Tree, Answer flow, Timeline and Budget tabs; a click in the tree picks a node."""
    ids = [n.id for n in trace.nodes]
    tree_fig, flow_fig, timeline_fig = run_figures(trace, shown, _colour_by(trace, prefix))
    tree, flow, timeline, budget = st.tabs(["Tree", "Answer flow", "Timeline", "Budget"])
    with tree:
        # The ring on the shown node is part of the figure, so a new selection draws a new
        # chart, whose own selection starts empty: every click is a new selection event,
        # the node clicked last included. The callback runs before the page is drawn.
        chart_key = run_key(trace.id, prefix, "tree")
        st.plotly_chart(
            tree_fig, key=chart_key, selection_mode="points",
            on_select=lambda: _select_clicked(chart_key, picker_key, ids),
            config={"displaylogo": False},
        )
    with flow:
        st.plotly_chart(flow_fig, key=run_key(trace.id, prefix, "flow"))
    with timeline:
        st.plotly_chart(timeline_fig, key=run_key(trace.id, prefix, "timeline"))
    with budget:
        st.dataframe(budget_rows(trace), hide_index=True,
                     key=run_key(trace.id, prefix, "budget"))


def _render_picker(trace: Trace, prefix: str, options: list[str], shown: str,
                   picker_key: str) -> str:
    """The Node select box and its ↑/↓ buttons (moving within the round); the choice."""
    row = st.container(horizontal=True, vertical_alignment="bottom", wrap=False)
    choice = row.selectbox(
        "Node",
        options,
        key=picker_key,
        format_func=lambda i: LATEST_LABEL if i == LATEST else _node_label(trace.node(i)),
        help="Click a node in the tree, pick it here, or move within its round with the "
             "arrow keys ↑ and ↓.",
    )
    for step, label, keyname in ((-1, "↑", "Up"), (1, "↓", "Down")):
        target = round_neighbour(trace, shown, step)
        row.button(label, key=run_key(trace.id, prefix, keyname.lower()),
                   shortcut=keyname, disabled=target is None,
                   help=f"{'Previous' if step < 0 else 'Next'} node of this round",
                   on_click=_select, args=(picker_key, target))
    return choice


def _colour_by(trace: Trace, prefix: str) -> str:
    """What the tree's colours stand for: the answer, or for a run whose calls reached
    several models (mixture of agents) the person's choice of answer or model."""
    if len(model_groups(trace)) < 2:
        return "answer"
    return st.radio("Colour the tree by", COLOUR_BY, horizontal=True,
                    key=run_key(trace.id, prefix, "colour_by"))


def round_neighbour(trace: Trace, node_id: str, step: int) -> str | None:
    """The node `step` places below (above, when negative) `node_id` in its column of the
    tree (its round and stage), or None past either end."""
    column = column_of(trace.node(node_id))
    peers = sorted((n for n in trace.nodes if column_of(n) == column), key=lambda n: n.branch)
    at = [n.id for n in peers].index(node_id) + step
    return peers[at].id if 0 <= at < len(peers) else None


def _select(picker_key: str, node_id: str | None) -> None:
    if node_id is not None:
        st.session_state[picker_key] = node_id


def _select_clicked(chart_key: str, picker_key: str, ids: list[str]) -> None:
    """A click on the tree selects the node; the picker follows it."""
    event = st.session_state.get(chart_key)
    points = (event or {}).get("selection", {}).get("points", [])
    for point in points:
        node_id = node_id_from_point(point)
        if node_id in ids:
            _select(picker_key, node_id)
            return


def _node_label(node: Node) -> str:
    state = {"ok": "", "failed": " · FAILED", "running": " · running"}[node.status]
    answer = f" · answer {node.answer}" if node.answer is not None else ""
    return f"{node.id} ({node.stage}, round {node.round}, branch {node.branch}){answer}{state}"
