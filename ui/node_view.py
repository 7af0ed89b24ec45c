"""One node of a run: its numbers, notes and the Output, Messages, Diff and Fork tabs."""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from pdr_core.extraction import find_answer, no_answer_reason
from pdr_core.render.textfmt import inert, model_markdown
from pdr_core.run.scores import verify_flags
from pdr_core.run.workspace import workspace_flags, workspace_summary
from pdr_core.tasks import answer_text
from pdr_core.trace import Node, Trace, gives_answer
from ui.code_view import render_tests
from ui.components import metric_row
from ui.diff_view import render_diffs
from ui.fork_view import render_fork
from ui.links import NODE_TABS, linked_tab
from ui.state import run_key


def _seconds(node: Node) -> float | None:
    if not node.finished_at:
        return None
    start = datetime.fromisoformat(node.started_at)
    return (datetime.fromisoformat(node.finished_at) - start).total_seconds()


def render_node(trace: Trace, node: Node, prefix: str, link: bool = False) -> str | None:
    """Everything about one node: messages, output, usage, timing, diffs. Returns the
    label of the tab open, when the tabs follow the address (`link`)."""
    seconds = _seconds(node)
    usage = node.usage
    completion = int(usage.get("completion_tokens", 0))
    metric_row([
        ("Answer", inert(answer_text(node.answer, node.tests))
         if node.answer is not None else "—"),
        ("Prompt tokens", f"{int(usage.get('prompt_tokens', 0)):,}"),
        ("Completion tokens", f"{completion:,}"),
        ("Seconds", f"{seconds:.2f}" if seconds is not None else "—"),
        ("Tokens/s", f"{completion / seconds:.1f}" if seconds else "—"),
    ])
    notes = _notes(node)
    if notes:
        st.caption(" · ".join(notes))
    _render_flags(node)
    if node.parent_ids:
        st.caption(inert("Conditioned on: " + ", ".join(node.parent_ids)))
    return _render_tabs(trace, node, prefix, link)


def _notes(node: Node) -> list[str]:
    """Short facts about how the node's numbers and answer came about."""
    notes = []
    if node.usage.get("estimated"):
        notes.append("usage estimated: the endpoint reported none")
    if not node.call:
        notes.append("extractive workspace: no model call")
    if node.finish_reason == "length":
        notes.append("stopped at the max-tokens limit")
    if node.correct is not None:
        notes.append("correct" if node.correct else "incorrect")
    found = find_answer(node.text) if node.answer is not None else None
    if found is not None and found.answer == node.answer:
        notes.append(f"answer found by the rule “{found.rule}”")
    return notes


def _render_flags(node: Node) -> None:
    """What went wrong or looks off: workspace and verify flags, no answer, a failure."""
    if node.stage == "distill" and node.status == "ok":
        st.caption(inert("Workspace: " + workspace_summary(node)))
        for flag in workspace_flags(node):
            if not flag.startswith("cut at kappa"):
                st.warning(inert(flag[:1].upper() + flag[1:] + "."))
    for flag in verify_flags(node):
        st.warning(inert(flag[:1].upper() + flag[1:] + "."))
    if node.status == "ok" and node.call and gives_answer(node.stage) and node.answer is None:
        st.warning(f"No answer: {no_answer_reason(node.text, node.finish_reason)}.")
    if node.status == "failed":
        st.error(inert(f"This call failed ({node.error_kind}): {node.error}"))


def _render_tabs(trace: Trace, node: Node, prefix: str, link: bool) -> str | None:
    """The Output, Messages, Diff and Fork tabs; the open one's label when `link`."""
    tab_key = run_key(trace.id, prefix, node.id, "tab")
    output, messages, diff, fork_tab = st.tabs(
        list(NODE_TABS.values()), key=tab_key, default=linked_tab() if link else None,
        on_change="rerun" if link else "ignore")
    with output:
        if node.status == "running":
            st.caption("streaming…")
        # st.markdown escapes raw HTML, so model text cannot inject markup or script.
        st.markdown(model_markdown(node.text) if node.text else "_(no text)_")
        render_tests(trace, node)
        if node.reasoning:
            with st.expander("Reasoning text"):
                st.markdown(model_markdown(node.reasoning))
    with messages:
        if not node.messages:
            st.caption("No messages: this workspace was assembled from the drafts it links to.")
        for message in node.messages:
            st.markdown(f"**{inert(message['role'])}**")
            st.code(message["content"], language=None, wrap_lines=True)
    with diff:
        render_diffs(trace, node, prefix)
    with fork_tab:
        if trace.status == "running" or node.status == "running":
            st.caption("Fork and playground open once the run has finished.")
        else:
            render_fork(trace, node, prefix)
    return st.session_state.get(tab_key) if link else None
