"""Trace -> networkx graph -> plotly figures: the run tree, the answer flow, the timeline.

Figures are built from a handful of plotly traces (one per colour group, never one per
node) so that a width-16, depth-8 run renders quickly. Every string that came from a model
or from an imported trace is escaped before it reaches hover text or legend names, since
plotly renders a subset of HTML there.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import networkx as nx
import plotly.graph_objects as go

from pdr_core.answers import AnswerKey, answer_clusters
from pdr_core.scores import parse_score, score_text, verify_flags
from pdr_core.tasks import answer_text, final_tests, trace_key
from pdr_core.trace import STAGES, Node, Trace, gives_answer, longest_token_path
from pdr_core.trace import critical_path as shared_critical_path
from pdr_core.workspace import workspace_flags

# Qualitative palette for answer clusters, biggest cluster first. It leaves out pure
# green, red and grey: those mean correct, failed/incorrect and no answer.
PALETTE = (
    "#4C78A8",
    "#F58518",
    "#B279A2",
    "#72B7B2",
    "#EECA3B",
    "#9D755D",
    "#FF9DA6",
    "#5B5EA6",
    "#0B84A5",
    "#C9A227",
    "#8E6C8A",
    "#2F9E9E",
)
NO_ANSWER_COLOR = "#B0B7C3"
DISTILL_COLOR = "#E2E8F0"
CHOICE_COLOR = "#FDE68A"
DISTILL_LINE = "#475569"
FAILED_COLOR = "#DC2626"
RUNNING_COLOR = "#64748B"
CORRECT_COLOR = "#16A34A"
INCORRECT_COLOR = "#DC2626"
SELECTED_COLOR = "#111827"
EDGE_COLOR = "#CBD5E1"
EDGE_SELECTED_COLOR = "#334155"
STAGE_COLORS = {
    "draft": "#4C78A8",
    "distill": "#94A3B8",
    "refine": "#F58518",
    "final": "#54A24B",
    "aggregate": "#B279A2",
    "judge": "#C9A227",
    "select": "#0B84A5",
    "verify": "#6F4E7C",
}
# Bars of stages with no colour of their own (any stage name a method may use).
OTHER_STAGE_COLORS = ("#9D755D", "#72B7B2", "#FF9DA6", "#5B5EA6", "#8E6C8A", "#2F9E9E")

HOVER_TEXT_CHARS = 160
HOVER_ANSWER_CHARS = 40
HOVER_ERROR_CHARS = 200
LEGEND_ANSWER_CHARS = 24

# Group keys for nodes without an answer cluster. normalize_answer strips control
# characters, so no model answer (not even "none") can collide with these.
NO_ANSWER = "\x00none"
FAILED = "\x00failed"
RUNNING = "\x00running"
DISTILL = "\x00distill"
CHOICE = "\x00choice"

_FONT = {"family": "Inter, system-ui, -apple-system, Segoe UI, sans-serif", "size": 12}


# --- small helpers --------------------------------------------------------------------------


def _short(text: str, limit: int) -> str:
    """`text` on one line, at most `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _esc(text: object, limit: int | None = None) -> str:
    """Escaped for plotly's HTML subset; shortened before escaping so no entity is cut."""
    raw = str(text)
    return html.escape(_short(raw, limit) if limit is not None else raw)


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _seconds(node: Node) -> float | None:
    start, end = _time(node.started_at), _time(node.finished_at)
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


# Stages drawn between two rounds: the workspace, and the verification that selects for it.
BETWEEN_ROUNDS = frozenset({"distill", "verify"})


def _is_generation(node: Node) -> bool:
    return gives_answer(node.stage)


def _is_choice(node: Node) -> bool:
    """A judge's or selector's call: it names a candidate rather than answering."""
    return node.stage != "distill" and not gives_answer(node.stage)


def column_of(node: Node) -> int:
    """The node's column: round 1 drafts, distill 1, round 2, distill 2, ..., final."""
    return 2 * (node.round - 1) + (1 if node.stage in BETWEEN_ROUNDS else 0)


def _configured_rounds(trace: Trace) -> int:
    schedule = trace.config.get("width_schedule")
    if isinstance(schedule, list | tuple) and schedule:
        return len(schedule)
    depth = trace.config.get("depth")
    return depth if isinstance(depth, int) and depth > 0 else 1


def node_id_from_point(point: Mapping[str, Any]) -> str | None:
    """The node id of one point of a plotly selection event (tree or timeline), or None.

    Streamlit: `event = st.plotly_chart(fig, on_select="rerun", selection_mode="points")`,
    then `node_id_from_point(event.selection.points[0])`.
    """
    data = point.get("customdata")
    if isinstance(data, list | tuple):
        data = data[0] if data else None
    return data if isinstance(data, str) else None


# --- graph ----------------------------------------------------------------------------------


def build_graph(trace: Trace) -> nx.DiGraph:
    """A node per trace node (attributes `node`, `column`, `row`), an edge per parent link.

    Rows are branches, with narrower columns centred against the widest one; the graph's
    own attributes hold `columns` (count), `column_labels` and `widest`.
    """
    sizes: dict[int, int] = {}
    stages: dict[int, set[str]] = {}
    for node in trace.nodes:
        column = column_of(node)
        sizes[column] = max(sizes.get(column, 0), node.branch + 1)
        stages.setdefault(column, set()).add(node.stage)
    widest = max(sizes.values(), default=1)
    rounds = max(_configured_rounds(trace), max((n.round for n in trace.nodes), default=1))
    columns = max(2 * rounds - 1, max(sizes, default=0) + 1)

    graph = nx.DiGraph(
        columns=columns,
        column_labels=_column_labels(trace, columns, rounds, stages),
        widest=widest,
    )
    for node in trace.nodes:
        column = column_of(node)
        row = node.branch + (widest - sizes[column]) / 2
        graph.add_node(node.id, node=node, column=column, row=row)
    for node in trace.nodes:
        for parent in node.parent_ids:
            # A parent missing from a partial import gets no edge rather than a bare node.
            if parent in graph:
                graph.add_edge(parent, node.id)
    return graph


def _column_labels(
    trace: Trace, columns: int, rounds: int, stages: Mapping[int, set[str]]
) -> list[str]:
    labels = []
    single = trace.config.get("method") == "single"
    for column in range(columns):
        round_ = column // 2 + 1
        present = stages.get(column, set())
        other = sorted(present - {"draft", "refine", "final"})
        if column % 2:
            labels.append(" / ".join(
                name for stage, name in (("verify", "Verify"), ("distill", "Distill"))
                if stage in present or (stage == "distill" and not present)) + f" {round_}")
        elif "final" in present or (not present and (single or 1 < round_ == rounds)):
            labels.append("Final")
        elif other:  # a stage of another method: aggregate, judge, select, ...
            labels.append(f"Round {round_} · {' / '.join(other)}")
        elif round_ == 1:
            labels.append("Round 1 drafts")
        else:
            labels.append(f"Round {round_}")
    return labels


# --- answers and colours --------------------------------------------------------------------


def _clusters(trace: Trace) -> list[tuple[str, list[Node]]]:
    """(answer key, its generation nodes), biggest cluster first: the normalised answer,
    or a program's behaviour (see `pdr_core.tasks.trace_key`)."""
    generations = [n for n in trace.nodes if _is_generation(n)]
    return [
        (key, [generations[i] for i in members])
        for key, members in answer_clusters([n.answer for n in generations], trace_key(trace))
    ]


def answer_colors(trace: Trace) -> dict[str, str]:
    """Normalised answer -> colour, biggest cluster first (the legend's order)."""
    return {key: PALETTE[i % len(PALETTE)] for i, (key, _) in enumerate(_clusters(trace))}


def _answer_label(first: Node, count: int) -> str:
    """Legend text of a cluster: its first answer as written (a program: what its tests
    said), its count, and ✓/✗ where it was graded."""
    label = f"{_esc(answer_text(first.answer, first.tests), LEGEND_ANSWER_CHARS)} (×{count})"
    return label + (" ✓" if first.correct else " ✗" if first.correct is False else "")


# --- tree -----------------------------------------------------------------------------------


def _hover(node: Node) -> str:
    lines = [
        f"<b>{_esc(node.id, 60)}</b>",
        f"stage: {_esc(node.stage)} · round {node.round} · branch {node.branch}",
    ]
    if node.stage == "distill":
        kind = "summary call" if node.call else "extractive (no call)"
        lines.append(f"workspace from {len(node.parent_ids)} draft(s) · {kind}")
        lines.extend(_esc(flag, HOVER_ERROR_CHARS) for flag in workspace_flags(node))
    elif node.stage == "verify":
        lines.append(f"verifies {_esc(', '.join(node.parent_ids), 60)} · score "
                     f"{score_text(parse_score(node.text))}")
        lines.extend(_esc(flag, HOVER_ERROR_CHARS) for flag in verify_flags(node))
    elif _is_choice(node):
        lines.append(f"chooses among {len(node.parent_ids)} candidate(s) · no answer of its "
                     "own")
    else:
        answer = _esc(node.answer, HOVER_ANSWER_CHARS) if node.answer is not None else "none"
        mark = {True: " ✓ correct", False: " ✗ incorrect"}.get(node.correct, "")
        lines.append(f"answer: {answer}{mark}")
    usage = node.usage
    lines.append(
        f"tokens: {node.tokens} (prompt {int(usage.get('prompt_tokens', 0))}, "
        f"completion {int(usage.get('completion_tokens', 0))})"
    )
    seconds = _seconds(node)
    lines.append(f"seconds: {seconds:.2f}" if seconds is not None else "seconds: –")
    finish = f" (finish: {_esc(node.finish_reason, 20)})" if node.finish_reason else ""
    lines.append(f"status: {_esc(node.status)}{finish}")
    if node.error:
        lines.append(f"error: {_esc(node.error, HOVER_ERROR_CHARS)}")
    if node.text:
        lines.append(f"text: {_esc(node.text, HOVER_TEXT_CHARS)}")
    return "<br>".join(lines)


def _group_of(node: Node, colors: Mapping[str, str], key: AnswerKey) -> str:
    """Which marker trace draws `node`: failed, running, distill, an answer key or none."""
    if node.status == "failed":
        return FAILED
    if node.status == "running":
        return RUNNING
    if node.stage == "distill":
        return DISTILL
    if _is_choice(node):
        return CHOICE
    group = key(node.answer)
    return group if group in colors else NO_ANSWER


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


def tree_figure(trace: Trace, selected: str | None = None) -> go.Figure:
    """The run as a tree: columns are stages, rows branches, colours answer clusters.

    Each marker's `customdata` is its node id (see `node_id_from_point`). Correct nodes get a
    green outline and ✓, incorrect ones a red outline and ✗ (with a reference); failed
    nodes are red X markers; running nodes hollow; `selected` gets a dark ring.
    """
    graph = build_graph(trace)
    widest = graph.graph["widest"]
    columns = graph.graph["columns"]
    clusters = _clusters(trace)
    colors = {key: PALETTE[i % len(PALETTE)] for i, (key, _) in enumerate(clusters)}
    size = 18 if widest <= 8 else 14

    groups: dict[str, list[Node]] = {}
    key_of = trace_key(trace)
    for node in trace.nodes:
        groups.setdefault(_group_of(node, colors, key_of), []).append(node)

    data: list[go.Scatter] = []
    running_edges = [(p, c) for p, c in graph.edges if graph.nodes[c]["node"].status == "running"]
    settled_edges = [(p, c) for p, c in graph.edges if graph.nodes[c]["node"].status != "running"]
    for edges, dash in ((settled_edges, "solid"), (running_edges, "dot")):
        if edges:
            xs, ys = _edge_xy(graph, edges)
            data.append(go.Scatter(x=xs, y=ys, mode="lines", hoverinfo="skip", showlegend=False,
                                   line={"color": EDGE_COLOR, "width": 1.2, "dash": dash}))
    if selected in graph:
        # Lineage of the selected node: the edges that fed it and the ones it feeds.
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

    rank = 0
    for key, nodes in clusters:
        members = groups.get(key, [])
        if members:
            rank += 1
            name = _answer_label(nodes[0], len(members))
            data.append(_marker_trace(graph, members, name, colors[key], "circle", size, rank))
    fixed = (
        (NO_ANSWER, "no answer", NO_ANSWER_COLOR, "circle"),
        (DISTILL, "workspace (distill)", DISTILL_COLOR, "square"),
        (CHOICE, "choice (judge / select)", CHOICE_COLOR, "diamond"),
        (FAILED, "failed", FAILED_COLOR, "x"),
        (RUNNING, "running", RUNNING_COLOR, "circle-open"),
    )
    for group, label, color, symbol in fixed:
        members = groups.get(group, [])
        if members:
            rank += 1
            name = f"{label} (×{len(members)})" if group == NO_ANSWER else label
            data.append(_marker_trace(graph, members, name, color, symbol, size, rank))

    height = max(300, 130 + 40 * widest)
    layout = go.Layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        plot_bgcolor="white",
        paper_bgcolor="white",
        font=_FONT,
        clickmode="event+select",
        dragmode=False,
        hovermode="closest",
        hoverlabel={"align": "left", "bgcolor": "white", "font": {"size": 12}},
        showlegend=True,
        legend={"title": {"text": "answers"}, "itemclick": "toggle", "bgcolor": "white"},
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
    return go.Figure(data=data, layout=layout)


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
    xs, ys, ids, hovers, texts, text_colors, line_colors, line_widths = ([] for _ in range(8))
    for node in nodes:
        attrs = graph.nodes[node.id]
        xs.append(attrs["column"])
        ys.append(attrs["row"])
        ids.append(node.id)
        hovers.append(_hover(node))
        verdict = node.correct if _is_generation(node) and node.status == "ok" else None
        if verdict is True:
            texts.append("✓")
            text_colors.append(CORRECT_COLOR)
            line_colors.append(CORRECT_COLOR)
            line_widths.append(3)
        elif verdict is False:
            texts.append("✗")
            text_colors.append(INCORRECT_COLOR)
            line_colors.append(INCORRECT_COLOR)
            line_widths.append(3)
        else:
            texts.append("")
            text_colors.append(color)
            outlined = symbol in ("square", "diamond")
            line_colors.append(DISTILL_LINE if outlined else "white")
            line_widths.append(1.5 if outlined else 1)
    if symbol in ("x", "circle-open"):
        # Line-drawn symbols take their colour from the marker line.
        line_colors = [color] * len(nodes)
        line_widths = [2] * len(nodes)
    has_text = any(texts)
    return go.Scatter(
        x=xs,
        y=ys,
        mode="markers+text" if has_text else "markers",
        name=name,
        legendrank=rank,
        customdata=ids,
        hovertext=hovers,
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


# --- answer flow ----------------------------------------------------------------------------


def _generations_by_round(trace: Trace) -> dict[int, list[Node]]:
    rounds: dict[int, list[Node]] = {}
    for node in trace.nodes:
        if _is_generation(node):
            rounds.setdefault(node.round, []).append(node)
    return dict(sorted(rounds.items()))


def lost_answer_rounds(trace: Trace) -> list[int]:
    """Rounds where some generation was right but the next round had none right.

    For the last round, "the next round" is the run's final answer (e.g. a vote that
    outvoted the right answer). Needs a reference answer; rounds whose successor is still
    running, or never ran, are not judged.
    """
    if trace.reference_answer is None and trace.task is None:
        return []
    by_round = _generations_by_round(trace)
    last = max(by_round, default=0)
    lost = []
    for round_, nodes in by_round.items():
        if not any(n.status == "ok" and n.correct for n in nodes):
            continue
        if round_ < last:
            following = by_round.get(round_ + 1, [])
            if not following or any(n.status == "running" for n in following):
                continue
            if not any(n.status == "ok" and n.correct for n in following):
                lost.append(round_)
        elif trace.status == "completed" and trace.correct is False:
            lost.append(round_)
    return lost


def _round_label(nodes: list[Node], round_: int) -> str:
    return "Final" if any(n.stage == "final" for n in nodes) else f"Round {round_}"


def answer_flow_figure(trace: Trace) -> go.Figure:
    """Per round, stacked bars of answer counts (the tree's colours), where the final answer
    came from, and the rounds that lost a correct answer (with a reference)."""
    by_round = _generations_by_round(trace)
    labels = [_round_label(nodes, r) for r, nodes in by_round.items()]
    clusters = _clusters(trace)
    key_of = trace_key(trace)
    keys_by_round = [
        [
            FAILED if n.status == "failed"
            else RUNNING if n.status == "running"
            else key_of(n.answer) or NO_ANSWER
            for n in nodes
        ]
        for nodes in by_round.values()
    ]

    series: list[tuple[str, str, str, bool]] = [
        (
            key,
            _answer_label(nodes[0], len(nodes)),
            PALETTE[i % len(PALETTE)],
            nodes[0].correct is True,
        )
        for i, (key, nodes) in enumerate(clusters)
    ]
    series += [
        (NO_ANSWER, "no answer", NO_ANSWER_COLOR, False),
        (FAILED, "failed", FAILED_COLOR, False),
        (RUNNING, "running", RUNNING_COLOR, False),
    ]
    data = []
    stacked: list[dict[str, tuple[float, int]]] = [{} for _ in labels]  # key -> (middle, n)
    bottoms = [0] * len(labels)
    for key, name, color, correct in series:
        counts = [keys.count(key) for keys in keys_by_round]
        if not any(counts):
            continue
        for i, count in enumerate(counts):
            stacked[i][key] = (bottoms[i] + count / 2, count)
            bottoms[i] += count
        totals = [len(keys) for keys in keys_by_round]
        data.append(go.Bar(
            x=labels,
            y=counts,
            name=name,
            marker={"color": color,
                    "line": {"color": CORRECT_COLOR if correct else "white",
                             "width": 2.5 if correct else 0.5}},
            customdata=totals,
            hovertemplate=f"%{{x}}: {name} — %{{y}} of %{{customdata}}<extra></extra>",
        ))

    annotations = []
    if labels:
        annotations.append(_final_annotation(trace, labels, keys_by_round, stacked))
    round_index = {r: i for i, r in enumerate(by_round)}
    for round_ in lost_answer_rounds(trace):
        i = round_index[round_]
        if i == len(labels) - 1:
            # Lost by the final answer itself (e.g. a vote): said in the final's own note.
            annotations[0]["text"] += "<br>✗ a correct answer in this round was outvoted"
            continue
        annotations.append({
            "x": labels[i], "y": bottoms[i], "yanchor": "bottom", "showarrow": False,
            "text": "✗ correct answer lost after this round",
            "font": {"color": INCORRECT_COLOR, "size": 11},
            "bgcolor": "#FEF2F2", "bordercolor": INCORRECT_COLOR,
        })
    layout = go.Layout(
        barmode="stack",
        height=360,
        margin={"l": 40, "r": 10, "t": 40, "b": 40},
        plot_bgcolor="white",
        paper_bgcolor="white",
        font=_FONT,
        bargap=0.35,
        legend={"title": {"text": "answers"}, "traceorder": "normal"},
        xaxis={"type": "category", "showgrid": False, "categoryorder": "array",
               "categoryarray": labels},
        yaxis={"title": {"text": "generations"}, "showgrid": True, "gridcolor": "#F1F5F9",
               "zeroline": False, "rangemode": "tozero",
               "range": [0, max(bottoms, default=1) * 1.55 + 1]},
        annotations=annotations,
        uirevision=trace.id,
    )
    return go.Figure(data=data, layout=layout)


def _final_annotation(
    trace: Trace,
    labels: list[str],
    keys_by_round: list[list[str]],
    stacked: list[dict[str, tuple[float, int]]],
) -> dict[str, Any]:
    """Arrow at the final answer's segment of the last round: who gave it, since when."""
    last = len(labels) - 1
    key = trace_key(trace)(trace.final_answer)
    if trace.status == "running":
        text, y = "running…", sum(n for _, n in stacked[last].values())
        return {"x": labels[last], "y": y, "yanchor": "bottom", "showarrow": False,
                "text": text, "font": {"color": RUNNING_COLOR}}
    if key is None:
        return {"x": labels[last], "y": sum(n for _, n in stacked[last].values()),
                "yanchor": "bottom", "showarrow": False, "text": "no final answer",
                "font": {"color": INCORRECT_COLOR}}
    seen = [i for i, keys in enumerate(keys_by_round) if key in keys]
    verdict = {True: " ✓", False: " ✗"}.get(trace.correct, "")
    shown = answer_text(trace.final_answer, final_tests(trace))
    head = f"final: {_esc(shown, LEGEND_ANSWER_CHARS)}{verdict}"
    if not seen:  # e.g. an imported trace whose final answer no node gave
        return {"x": labels[last], "y": sum(n for _, n in stacked[last].values()),
                "yanchor": "bottom", "showarrow": False,
                "text": f"{head}<br>given by no generation shown"}
    # The arrow points at the latest round that gave it: the last one, unless the budget
    # stopped the run after a round whose calls all failed.
    first, source = seen[0], seen[-1]
    middle, count = stacked[source][key]
    text = (
        f"{head}<br>{count} of {len(keys_by_round[source])} in {labels[source]}; "
        f"first seen in {labels[first]} "
        f"({keys_by_round[first].count(key)} of {len(keys_by_round[first])})"
    )
    top = max(sum(n for _, n in column.values()) for column in stacked)
    # The box sits above every bar (the y range leaves room), its arrow down to the segment.
    return {"x": labels[source], "y": middle, "ax": 0, "ay": top * 1.3 + 0.5, "ayref": "y",
            "xanchor": "right" if source else "left", "yanchor": "bottom",
            "showarrow": True, "arrowhead": 2, "text": text, "align": "left",
            "bgcolor": "white", "bordercolor": "#94A3B8", "font": {"size": 11}}


# --- timeline -------------------------------------------------------------------------------


def critical_path(trace: Trace) -> list[str]:
    """Calls on the latency critical path, root first: the chain of calls, each waiting on
    the parent that finished last, that ends at the last call to finish (the shared
    `trace.critical_path` keyed by finish time). Running and extractive nodes are not on it."""
    def settled(node: Node) -> bool:
        return node.call and node.status != "running" and _time(node.finished_at) is not None

    def finished(node: Node) -> float:
        end = _time(node.finished_at)
        return end.timestamp() if end is not None and settled(node) else 0.0

    # A node finishes after its parents; one clock tick (1 µs) apart keeps a child that
    # finished within its parent's tick after it on the path.
    _, path = shared_critical_path(trace.nodes, finished,
                                   lambda own, before: max(own, before + 1e-6))
    calls = {n.id for n in trace.nodes if settled(n)}
    return [node_id for node_id in path if node_id in calls]


def timeline_stages(nodes: Iterable[Node]) -> list[str]:
    """The stages of `nodes`: the built-in ones in pipeline order, then any other in the
    order it first appears."""
    present = list(dict.fromkeys(n.stage for n in nodes))
    known = [s for s in STAGES if s in present]
    return known + [s for s in present if s not in known]


def stage_color(stage: str, nodes: Iterable[Node]) -> str:
    """A stage's bar colour: its own, else one of OTHER_STAGE_COLORS by its place among
    the stages without one."""
    if stage in STAGE_COLORS:
        return STAGE_COLORS[stage]
    others = [s for s in timeline_stages(nodes) if s not in STAGE_COLORS]
    return OTHER_STAGE_COLORS[others.index(stage) % len(OTHER_STAGE_COLORS)]


def timeline_figure(trace: Trace, now: datetime | None = None) -> go.Figure:
    """Every call as a bar from its start to its end (seconds since the run started), one
    row per call ordered by start, coloured by stage, the critical path outlined.

    Running calls end at `now` when given, else at the latest time the trace records.
    """
    calls = [n for n in trace.nodes if n.call and _time(n.started_at) is not None]
    starts = {n.id: _time(n.started_at) for n in calls}
    known = [t for n in calls for t in (starts[n.id], _time(n.finished_at)) if t is not None]
    origin = _time(trace.created_at)
    if origin is None or (known and min(known) < origin):
        origin = min(known, default=None)
    horizon = now or max(known, default=origin)
    span = (horizon - origin).total_seconds() if origin is not None else 0.0
    calls.sort(key=lambda n: (starts[n.id], column_of(n), n.branch))
    critical = set(critical_path(trace))

    data: list[Any] = []
    for stage in timeline_stages(calls):
        nodes = [n for n in calls if n.stage == stage]
        bases, widths, ids, hovers, line_colors, line_widths, patterns, opacities = (
            [] for _ in range(8)
        )
        for node in nodes:
            start = (starts[node.id] - origin).total_seconds()
            end_time = _time(node.finished_at) or horizon
            duration = max((end_time - starts[node.id]).total_seconds(), 0.0)
            bases.append(start)
            # A zero-length call still gets a sliver so it can be seen and clicked.
            widths.append(max(duration, span / 300, 1e-3))
            ids.append(node.id)
            on_path = node.id in critical
            line_colors.append(SELECTED_COLOR if on_path else "white")
            line_widths.append(2.5 if on_path else 0.5)
            opacities.append(1.0 if on_path else 0.65)
            patterns.append("x" if node.status == "failed" else "." if node.status == "running"
                            else "")
            hovers.append(
                f"<b>{_esc(node.id, 60)}</b><br>{_esc(node.stage)} · round {node.round} · "
                f"branch {node.branch}<br>start {start:.2f}s · {duration:.2f}s"
                f"<br>tokens: {node.tokens}<br>status: {_esc(node.status)}"
                + ("<br>on the critical path" if on_path else "")
                + (f"<br>error: {_esc(node.error, HOVER_ERROR_CHARS)}" if node.error else "")
            )
        data.append(go.Bar(
            orientation="h",
            y=ids,
            x=widths,
            base=bases,
            name=stage,
            customdata=ids,
            hovertext=hovers,
            hovertemplate="%{hovertext}<extra></extra>",
            marker={"color": stage_color(stage, calls), "opacity": opacities,
                    "line": {"color": line_colors, "width": line_widths},
                    "pattern": {"shape": patterns, "fillmode": "overlay", "size": 6}},
        ))
    data.append(go.Scatter(
        x=[None], y=[None], mode="markers", name="critical path (outlined)",
        hoverinfo="skip",
        marker={"symbol": "square-open", "size": 12, "color": SELECTED_COLOR,
                "line": {"width": 2.5}},
    ))
    order = [n.id for n in calls]
    layout = go.Layout(
        barmode="overlay",
        height=max(240, 90 + 16 * len(order)),
        margin={"l": 10, "r": 10, "t": 40, "b": 40},
        plot_bgcolor="white",
        paper_bgcolor="white",
        font=_FONT,
        clickmode="event+select",
        bargap=0.25,
        legend={"title": {"text": "stage"}},
        xaxis={"title": {"text": "seconds since the run started"}, "showgrid": True,
               "gridcolor": "#F1F5F9", "zeroline": False, "rangemode": "tozero"},
        yaxis={"type": "category", "categoryorder": "array", "categoryarray": order,
               "autorange": "reversed", "showgrid": False, "tickfont": {"size": 10}},
        uirevision=trace.id,
    )
    return go.Figure(data=data, layout=layout)


# --- budget ---------------------------------------------------------------------------------


def budget_table(trace: Trace) -> list[dict[str, Any]]:
    """Token use per round, then the B_seq and B_total totals against the configured caps.

    Every row has the same keys: `row` (label), `round` (None on totals), `calls`,
    `prompt_tokens`, `completion_tokens`, `tokens`, `largest_call`, `cap` (per-call
    max_tokens on rounds, total_budget on B_total, None where there is none), `share_of_cap`
    and `within_cap` (every call's completion within its own cap; the total within budget).
    Counts follow `compute_budget`: finished calls only, extractive distills excluded.
    """
    max_tokens = trace.config.get("max_tokens")
    # A summary call's cap: its own budget, the per-call budget by default; kappa for runs
    # saved before the distill budget existed.
    distill_cap = (trace.config.get("distill_max_tokens") or max_tokens
                   if "distill_max_tokens" in trace.config
                   else trace.config.get("workspace_tokens"))
    total_budget = trace.config.get("total_budget")
    rounds: dict[int, list[Node]] = {}
    for node in trace.nodes:
        if node.call and node.status != "running":
            rounds.setdefault(node.round, []).append(node)

    rows: list[dict[str, Any]] = []
    for round_, nodes in sorted(rounds.items()):
        largest_completion = max(int(n.usage.get("completion_tokens", 0)) for n in nodes)
        within = True
        for n in nodes:
            cap = distill_cap if n.stage == "distill" else max_tokens
            if isinstance(cap, int) and int(n.usage.get("completion_tokens", 0)) > cap:
                within = False
        rows.append(_row(
            f"Round {round_}", round_, nodes,
            cap=max_tokens if isinstance(max_tokens, int) else None,
            share=(largest_completion / max_tokens
                   if isinstance(max_tokens, int) and max_tokens else None),
            within=within,
        ))

    budget = trace.budget
    settled = [n for nodes in rounds.values() for n in nodes]
    path = set(longest_token_path(trace.nodes)[1])
    seq_nodes = [n for n in settled if n.id in path]
    rows.append(_row("B_seq", None, seq_nodes, cap=None, share=None, within=None,
                     tokens=budget.b_seq))
    has_cap = isinstance(total_budget, int) and total_budget > 0
    rows.append(_row(
        "B_total", None, settled,
        cap=total_budget if has_cap else None,
        share=budget.b_total / total_budget if has_cap else None,
        within=budget.b_total <= total_budget if has_cap else None,
        tokens=budget.b_total,
    ))
    return rows


def _row(
    label: str,
    round_: int | None,
    nodes: list[Node],
    cap: int | None,
    share: float | None,
    within: bool | None,
    tokens: int | None = None,
) -> dict[str, Any]:
    prompt = sum(int(n.usage.get("prompt_tokens", 0)) for n in nodes)
    completion = sum(int(n.usage.get("completion_tokens", 0)) for n in nodes)
    return {
        "row": label,
        "round": round_,
        "calls": len(nodes),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "tokens": prompt + completion if tokens is None else tokens,
        "largest_call": max((n.tokens for n in nodes), default=0),
        "cap": cap,
        "share_of_cap": share,
        "within_cap": within,
    }
