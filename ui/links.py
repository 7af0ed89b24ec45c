"""Deep links: the History page's address names the run, node and node tab shown
(`?run=ID&node=ID&tab=diff`), opens exactly that, and follows every click."""

from __future__ import annotations

import streamlit as st

# The node detail's tabs: the name in the address, and the label shown.
NODE_TABS = {"output": "Output", "messages": "Messages sent", "diff": "Diff",
             "fork": "Fork & playground"}


def open_linked_node(picker_key: str, ids: list[str]) -> None:
    """Select the node the address names, the first time this run's picker is drawn."""
    node = st.query_params.get("node")
    if node in ids and picker_key not in st.session_state:
        st.session_state[picker_key] = node


def linked_tab() -> str:
    """The label of the node tab the address names (Output when it names none)."""
    return NODE_TABS.get(st.query_params.get("tab", ""), NODE_TABS["output"])


def publish(node_id: str | None, tab_label: str | None) -> None:
    """Put the node and tab shown in the address, so a reload or a shared link opens them."""
    slugs = {label: slug for slug, label in NODE_TABS.items()}
    for name, value in (("node", node_id), ("tab", slugs.get(tab_label or ""))):
        if value:
            if st.query_params.get(name) != value:
                st.query_params[name] = value
        elif name in st.query_params:
            del st.query_params[name]


def publish_run(run_id: str) -> None:
    """Put the run shown in the address; a node and tab named there belong to the run
    named before, so they go when the run changes."""
    if st.query_params.get("run") != run_id:
        for name in ("node", "tab"):
            if name in st.query_params:
                del st.query_params[name]
        st.query_params["run"] = run_id
