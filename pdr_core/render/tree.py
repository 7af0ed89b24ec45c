"""The run tree: every call a marker in its round's column, coloured by its answer group,
edges from parents, the selected node ringed."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import networkx as nx
import plotly.graph_objects as go

from pdr_core.answers import AnswerKey
from pdr_core.render.graph import (
    CHOICE,
    CHOICE_COLOR,
    CORRECT_COLOR,
    DISTILL,
    DISTILL_COLOR,
    DISTILL_LINE,
    EDGE_COLOR,
    EDGE_SELECTED_COLOR,
    FAILED,
    FAILED_COLOR,
    FONT,
    HOVER_ANSWER_CHARS,
    HOVER_ERROR_CHARS,
    HOVER_TEXT_CHARS,
    INCORRECT_COLOR,
    NO_ANSWER,
    NO_ANSWER_COLOR,
    PALETTE,
    RUNNING,
    RUNNING_COLOR,
    SELECTED_COLOR,
    answer_groups,
    answer_label,
    build_graph,
    esc,
    is_choice,
    is_generation,
    model_groups,
    node_model,
    node_seconds,
)
from pdr_core.run.scores import parse_score, score_text, verify_flags
from pdr_core.run.workspace import workspace_flags
from pdr_core.tasks import trace_key
from pdr_core.trace import Node, Trace


def _hover(node: Node) -> str:
    lines = [
        f"<b>{esc(node.id, 60)}</b>",
        f"stage: {esc(node.stage)} · round {node.round} · branch {node.branch}",
    ]
    if node.stage == "distill":
        kind = "summary call" if node.call else "extractive (no call)"
        lines.append(f"workspace from {len(node.parent_ids)} draft(s) · {kind}")
        lines.extend(esc(flag, HOVER_ERROR_CHARS) for flag in workspace_flags(node))
    elif node.stage == "verify":
        lines.append(f"verifies {esc(', '.join(node.parent_ids), 60)} · score "
                     f"{score_text(parse_score(node.text))}")
        lines.extend(esc(flag, HOVER_ERROR_CHARS) for flag in verify_flags(node))
    elif is_choice(node):
        lines.append(f"chooses among {len(node.parent_ids)} candidate(s) · no answer of its "
                     "own")
    else:
        answer = esc(node.answer, HOVER_ANSWER_CHARS) if node.answer is not None else "none"
        mark = {True: " ✓ correct", False: " ✗ incorrect"}.get(node.correct, "")
        lines.append(f"answer: {answer}{mark}")
    usage = node.usage
    lines.append(
        f"tokens: {node.tokens} (prompt {int(usage.get('prompt_tokens', 0))}, "
        f"completion {int(usage.get('completion_tokens', 0))})"
    )
    seconds = node_seconds(node)
    lines.append(f"seconds: {seconds:.2f}" if seconds is not None else "seconds: –")
    finish = f" (finish: {esc(node.finish_reason, 20)})" if node.finish_reason else ""
    lines.append(f"status: {esc(node.status)}{finish}")
    if node.error:
        lines.append(f"error: {esc(node.error, HOVER_ERROR_CHARS)}")
    if node.text:
        lines.append(f"text: {esc(node.text, HOVER_TEXT_CHARS)}")
    return "<br>".join(lines)


def _group_of(node: Node, colors: Mapping[str, str], key: Callable[[Node], str]) -> str:
    """Which marker trace draws `node`: failed, running, distill, an answer key or none."""
    if node.status == "failed":
        return FAILED
    if node.status == "running":
        return RUNNING
    if node.stage == "distill":
        return DISTILL
    if is_choice(node):
        return CHOICE
    group = key(node)
    return group if group in colors else NO_ANSWER


Clusters = list[tuple[str, list[Node]]]
# What the tree's colours can stand for (the run view offers model for routed runs).
COLOUR_BY = ("answer", "model")


def _colouring(trace: Trace, by: str
               ) -> tuple[Clusters, Callable[[Node], str], Callable[[str, list[Node], int], str]]:
    """The coloured groups, a node's group and a group's legend text, by answer or model."""
    if by == "model":
        return (model_groups(trace), lambda n: node_model(n, trace),
                lambda model, _, count: f"{esc(model, 40)} (×{count})")
    answer_key: AnswerKey = trace_key(trace)
    return (answer_groups(trace), lambda n: answer_key(n.answer),
            lambda _, nodes, count: answer_label(nodes[0], count))


def _edge_xy(
    graph: nx.DiGraph, edges: Iterable[tuple[str, str]]
) -> tuple[list[float | None], list[float | None]]:
    xs: list[float | None] = []
    ys: list[float | None] = []
    for parent, child in edges:
        p, c = graph.nodes[parent], graph.nodes[child]
        xs += [p["column"], c["column"], None]
        ys += [p["row"], c["row"], None]
    return xs, ys


# The marker traces that are not answer clusters, in legend order: group, label, colour, symbol.
_FIXED_GROUPS = (
    (NO_ANSWER, "no answer", NO_ANSWER_COLOR, "circle"),
    (DISTILL, "workspace (distill)", DISTILL_COLOR, "square"),
    (CHOICE, "choice (judge / select)", CHOICE_COLOR, "diamond"),
    (FAILED, "failed", FAILED_COLOR, "x"),
    (RUNNING, "running", RUNNING_COLOR, "circle-open"),
)


def tree_figure(trace: Trace, selected: str | None = None, colour_by: str = "answer"
                ) -> go.Figure:
    """The run as a tree: columns are stages, rows branches, colours answer clusters (or,
    `colour_by` "model", the model each call reached).

    Each marker's `customdata` is its node id (see `node_id_from_point`). Correct nodes get a
    green outline and ✓, incorrect ones a red outline and ✗ (with a reference); failed
    nodes are red X markers; running nodes hollow; `selected` gets a dark ring.
    """
    graph = build_graph(trace)
    size = 18 if graph.graph["widest"] <= 8 else 14
    data = [*_edge_traces(graph), *_selection_traces(graph, selected, size),
            *_node_traces(trace, graph, size, colour_by)]
    return go.Figure(data=data, layout=_tree_layout(trace, graph, selected, colour_by))


def _edge_traces(graph: nx.DiGraph) -> list[go.Scatter]:
    """Edges into settled nodes as solid lines, into running ones dotted."""
    data = []
    running_edges = [(p, c) for p, c in graph.edges if graph.nodes[c]["node"].status == "running"]
    settled_edges = [(p, c) for p, c in graph.edges if graph.nodes[c]["node"].status != "running"]
    for edges, dash in ((settled_edges, "solid"), (running_edges, "dot")):
        if edges:
            xs, ys = _edge_xy(graph, edges)
            data.append(go.Scatter(x=xs, y=ys, mode="lines", hoverinfo="skip", showlegend=False,
                                   line={"color": EDGE_COLOR, "width": 1.2, "dash": dash}))
    return data


def _selection_traces(graph: nx.DiGraph, selected: str | None, size: int) -> list[go.Scatter]:
    """The selected node's lineage (the edges that fed it and the ones it feeds) and its
    ring; nothing when `selected` is not in the tree."""
    if selected not in graph:
        return []
    data = []
    lineage = [*graph.in_edges(selected), *graph.out_edges(selected)]
    if lineage:
        xs, ys = _edge_xy(graph, lineage)
        data.append(go.Scatter(x=xs, y=ys, mode="lines", hoverinfo="skip", showlegend=False,
                               line={"color": EDGE_SELECTED_COLOR, "width": 2.2}))
    # Drawn before the node markers and not hoverable, so clicks still reach the node.
    point = graph.nodes[selected]
    data.append(go.Scatter(
        x=[point["column"]], y=[point["row"]], mode="markers", hoverinfo="skip",
        showlegend=False, name="selected", meta={"node": selected},
        marker={"symbol": "circle-open", "size": size + 14, "color": SELECTED_COLOR,
                "line": {"width": 3, "color": SELECTED_COLOR}},
    ))
    return data


def _node_traces(trace: Trace, graph: nx.DiGraph, size: int, colour_by: str
                 ) -> list[go.Scatter]:
    """One marker trace per answer cluster or model (biggest first), then the fixed groups."""
    clusters, key_of, label_of = _colouring(trace, colour_by)
    colors = {key: PALETTE[i % len(PALETTE)] for i, (key, _) in enumerate(clusters)}
    groups: dict[str, list[Node]] = {}
    for node in trace.nodes:
        groups.setdefault(_group_of(node, colors, key_of), []).append(node)
    data: list[go.Scatter] = []
    for key, nodes in clusters:
        members = groups.get(key, [])
        if members:
            name = label_of(key, nodes, len(members))
            data.append(_marker_trace(graph, members, name, colors[key], "circle", size,
                                      len(data) + 1))
    for group, label, color, symbol in _FIXED_GROUPS:
        members = groups.get(group, [])
        if members:
            name = f"{label} (×{len(members)})" if group == NO_ANSWER else label
            data.append(_marker_trace(graph, members, name, color, symbol, size,
                                      len(data) + 1))
    return data


def _tree_layout(trace: Trace, graph: nx.DiGraph, selected: str | None, colour_by: str
                 ) -> go.Layout:
    columns = graph.graph["columns"]
    return go.Layout(
        height=max(300, 130 + 40 * graph.graph["widest"]),
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        plot_bgcolor="white",
        paper_bgcolor="white",
        font=FONT,
        clickmode="event+select",
        dragmode=False,
        hovermode="closest",
        hoverlabel={"align": "left", "bgcolor": "white", "font": {"size": 12}},
        showlegend=True,
        legend={"title": {"text": "models" if colour_by == "model" else "answers"},
                "itemclick": "toggle", "bgcolor": "white"},
        uirevision=trace.id,
        # A new selected node starts the chart's own selection afresh (the legend is kept):
        # plotly would otherwise toggle the point clicked last off when it is clicked again.
        selectionrevision=f"{trace.id}:{selected}",
        xaxis={
            "tickvals": list(range(columns)),
            "ticktext": graph.graph["column_labels"],
            "side": "top",
            "showgrid": False,
            "zeroline": False,
            "showline": False,
            "ticks": "",
            "tickfont": {"size": 11},
            "range": [-0.5, columns - 0.4],
        },
        yaxis={
            "visible": False,
            "showgrid": False,
            "zeroline": False,
            "autorange": "reversed",
        },
    )


def _point_style(node: Node, color: str, symbol: str) -> tuple[str, str, str, float]:
    """A point's text, text colour, outline colour and outline width: ✓/✗ and a green or
    red outline for a graded generation, else the group's own look."""
    verdict = node.correct if is_generation(node) and node.status == "ok" else None
    if verdict is True:
        return "✓", CORRECT_COLOR, CORRECT_COLOR, 3
    if verdict is False:
        return "✗", INCORRECT_COLOR, INCORRECT_COLOR, 3
    outlined = symbol in ("square", "diamond")
    return "", color, DISTILL_LINE if outlined else "white", 1.5 if outlined else 1


def _marker_trace(
    graph: nx.DiGraph,
    nodes: list[Node],
    name: str,
    color: str,
    symbol: str,
    size: int,
    rank: int,
) -> go.Scatter:
    """One legend group of nodes; outlines and ✓/✗ text per point show correctness."""
    styles = [_point_style(node, color, symbol) for node in nodes]
    texts, text_colors, line_colors, line_widths = (
        list(column) for column in zip(*styles, strict=True)
    )
    if symbol in ("x", "circle-open"):
        # Line-drawn symbols take their colour from the marker line.
        line_colors = [color] * len(nodes)
        line_widths = [2] * len(nodes)
    has_text = any(texts)
    return go.Scatter(
        x=[graph.nodes[node.id]["column"] for node in nodes],
        y=[graph.nodes[node.id]["row"] for node in nodes],
        mode="markers+text" if has_text else "markers",
        name=name,
        legendrank=rank,
        customdata=[node.id for node in nodes],
        hovertext=[_hover(node) for node in nodes],
        hovertemplate="%{hovertext}<extra></extra>",
        text=texts if has_text else None,
        textposition="middle right",
        textfont={"color": text_colors, "size": 13},
        marker={
            "symbol": symbol,
            "size": size,
            "color": color,
            "line": {"color": line_colors, "width": line_widths},
        },
        # The page shows the selection with its own ring; plotly must not dim the rest.
        selected={"marker": {"opacity": 1}},
        unselected={"marker": {"opacity": 1}},
    )
