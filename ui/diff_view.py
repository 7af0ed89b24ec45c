"""Word diffs between nodes: against the previous round, the next workspace, any node."""

from __future__ import annotations

import streamlit as st

from pdr_core.render.diffs import (
    diff_html,
    diff_stats,
    is_program,
    next_workspace,
    predecessor,
    predecessor_title,
)
from pdr_core.render.textfmt import inert
from pdr_core.trace import Node, Trace
from ui.code_view import code_diff_block
from ui.state import run_key


def render_diffs(trace: Trace, node: Node, prefix: str) -> None:
    before = predecessor(trace, node.id)
    after = next_workspace(trace, node.id) if node.stage == "distill" else None
    if before:
        _diff_nodes(trace, f"Against {before} ({predecessor_title(trace, node.id, before)})",
                    trace.node(before), node)
    if after:
        _diff_nodes(trace, f"Against {after} (next round's workspace)", node,
                    trace.node(after))
    others = [n.id for n in trace.nodes if n.id != node.id]
    other = st.selectbox("Compare with another node", ["—"] + others,
                         key=run_key(trace.id, prefix, node.id, "diff_other"))
    if other != "—":
        _diff_nodes(trace, f"Against {other}", trace.node(other), node)
    elif not before and not after:
        st.caption("No predecessor: pick a node to compare with.")


def _diff_nodes(trace: Trace, title: str, old: Node, new: Node) -> None:
    """Two programs line by line; any other pair of texts word by word."""
    if is_program(trace, old) and is_program(trace, new):
        code_diff_block(title, old.answer or "", new.answer or "")
    else:
        diff_block(title, old.text, new.text)


def diff_block(title: str, old: str, new: str) -> None:
    """A titled word diff from `old` to `new`, with the words added and removed."""
    added, removed = diff_stats(old, new)
    st.markdown(f"**{inert(title)}** · :green[+{added}] :red[−{removed}] words")
    st.html(diff_html(old, new))
