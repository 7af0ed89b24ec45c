"""The run as a graph for the figures: nodes in columns, answer groups and their colours,
and the small helpers every figure shares (escaping, times, clicked points)."""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import networkx as nx

from pdr_core.answers import answer_clusters
from pdr_core.tasks import answer_text, trace_key
from pdr_core.trace import Node, Trace, gives_answer

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


FONT = {"family": "Inter, system-ui, -apple-system, Segoe UI, sans-serif", "size": 12}


def short_text(text: str, limit: int) -> str:
    """`text` on one line, at most `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def esc(text: object, limit: int | None = None) -> str:
    """Escaped for plotly's HTML subset; shortened before escaping so no entity is cut."""
    raw = str(text)
    return html.escape(short_text(raw, limit) if limit is not None else raw)


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def node_seconds(node: Node) -> float | None:
    start, end = parse_time(node.started_at), parse_time(node.finished_at)
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


# Stages drawn between two rounds: the workspace, and the verification that selects for it.
BETWEEN_ROUNDS = frozenset({"distill", "verify"})


def is_generation(node: Node) -> bool:
    return gives_answer(node.stage)


def is_choice(node: Node) -> bool:
    """A judge's or selector's call: it names a candidate rather than answering."""
    return node.stage != "distill" and not gives_answer(node.stage)


def column_of(node: Node) -> int:
    """The node's column: round 1 drafts, distill 1, round 2, distill 2, ..., final."""
    return 2 * (node.round - 1) + (1 if node.stage in BETWEEN_ROUNDS else 0)


def configured_rounds(trace: Trace) -> int:
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
    rounds = max(configured_rounds(trace), max((n.round for n in trace.nodes), default=1))
    columns = max(2 * rounds - 1, max(sizes, default=0) + 1)

    graph = nx.DiGraph(
        columns=columns,
        column_labels=column_labels(trace, columns, rounds, stages),
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


def column_labels(
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


def answer_groups(trace: Trace) -> list[tuple[str, list[Node]]]:
    """(answer key, its generation nodes), biggest cluster first: the normalised answer,
    or a program's behaviour (see `pdr_core.tasks.trace_key`)."""
    generations = [n for n in trace.nodes if is_generation(n)]
    return [
        (key, [generations[i] for i in members])
        for key, members in answer_clusters([n.answer for n in generations], trace_key(trace))
    ]


def node_model(node: Node, trace: Trace) -> str:
    """The model a node called: its own where the call was routed (mixture of agents),
    else the run's."""
    return node.model or str(trace.config.get("model") or "") or "the run's model"


def model_groups(trace: Trace) -> list[tuple[str, list[Node]]]:
    """(model, its generation nodes), most nodes first: the tree coloured by model."""
    groups: dict[str, list[Node]] = {}
    for node in trace.nodes:
        if is_generation(node):
            groups.setdefault(node_model(node, trace), []).append(node)
    return sorted(groups.items(), key=lambda item: -len(item[1]))


def answer_colors(trace: Trace) -> dict[str, str]:
    """Normalised answer -> colour, biggest cluster first (the legend's order)."""
    return {key: PALETTE[i % len(PALETTE)] for i, (key, _) in enumerate(answer_groups(trace))}


def answer_label(first: Node, count: int) -> str:
    """Legend text of a cluster: its first answer as written (a program: what its tests
    said), its count, and ✓/✗ where it was graded."""
    label = f"{esc(answer_text(first.answer, first.tests), LEGEND_ANSWER_CHARS)} (×{count})"
    return label + (" ✓" if first.correct else " ✗" if first.correct is False else "")
