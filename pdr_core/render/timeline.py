"""The timeline: every call as a bar from its start to its end, the critical path outlined."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import plotly.graph_objects as go

from pdr_core.budgets import critical_path as shared_critical_path
from pdr_core.render.graph import (
    FONT,
    HOVER_ERROR_CHARS,
    OTHER_STAGE_COLORS,
    SELECTED_COLOR,
    STAGE_COLORS,
    column_of,
    esc,
    parse_time,
)
from pdr_core.trace import STAGES, Node, Trace


def critical_path(trace: Trace) -> list[str]:
    """Calls on the latency critical path, root first: the chain of calls, each waiting on
    the parent that finished last, that ends at the last call to finish (the shared
    `trace.critical_path` keyed by finish time). Running and extractive nodes are not on it."""
    def settled(node: Node) -> bool:
        return node.call and node.status != "running" and parse_time(node.finished_at) is not None

    def finished(node: Node) -> float:
        end = parse_time(node.finished_at)
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


@dataclass(frozen=True)
class _Clock:
    """Where a timeline's seconds count from and to: `origin` is the run's start (or its
    first recorded time, if earlier), `horizon` where running calls end, `span` between."""

    origin: datetime
    horizon: datetime
    span: float


def _clock(trace: Trace, calls: list[Node], now: datetime | None) -> _Clock | None:
    known = [t for n in calls for t in (parse_time(n.started_at), parse_time(n.finished_at))
             if t is not None]
    origin = parse_time(trace.created_at)
    if origin is None or (known and min(known) < origin):
        origin = min(known, default=None)
    if origin is None:
        return None
    horizon = now or max(known, default=origin)
    return _Clock(origin, horizon, (horizon - origin).total_seconds())


def timeline_figure(trace: Trace, now: datetime | None = None) -> go.Figure:
    """Every call as a bar from its start to its end (seconds since the run started), one
    row per call ordered by start, coloured by stage, the critical path outlined.

    Running calls end at `now` when given, else at the latest time the trace records.
    """
    calls = [n for n in trace.nodes if n.call and parse_time(n.started_at) is not None]
    calls.sort(key=lambda n: (parse_time(n.started_at), column_of(n), n.branch))
    clock = _clock(trace, calls, now)
    critical = set(critical_path(trace))
    data: list[Any] = []
    if clock is not None:  # else no call has started
        data += [_stage_bar(stage, calls, clock, critical) for stage in timeline_stages(calls)]
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
        font=FONT,
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


def _stage_bar(stage: str, calls: list[Node], clock: _Clock, critical: set[str]) -> go.Bar:
    """The bars of one stage's calls, those on the critical path outlined."""
    nodes = [n for n in calls if n.stage == stage]
    bases, widths, hovers, line_colors, line_widths, patterns, opacities = (
        [] for _ in range(7)
    )
    for node in nodes:
        started = parse_time(node.started_at)
        assert started is not None  # calls are the nodes that started
        start = (started - clock.origin).total_seconds()
        duration = max(((parse_time(node.finished_at) or clock.horizon) - started)
                       .total_seconds(), 0.0)
        bases.append(start)
        # A zero-length call still gets a sliver so it can be seen and clicked.
        widths.append(max(duration, clock.span / 300, 1e-3))
        on_path = node.id in critical
        line_colors.append(SELECTED_COLOR if on_path else "white")
        line_widths.append(2.5 if on_path else 0.5)
        opacities.append(1.0 if on_path else 0.65)
        patterns.append("x" if node.status == "failed" else "." if node.status == "running"
                        else "")
        hovers.append(
            f"<b>{esc(node.id, 60)}</b><br>{esc(node.stage)} · round {node.round} · "
            f"branch {node.branch}<br>start {start:.2f}s · {duration:.2f}s"
            f"<br>tokens: {node.tokens}<br>status: {esc(node.status)}"
            + ("<br>on the critical path" if on_path else "")
            + (f"<br>error: {esc(node.error, HOVER_ERROR_CHARS)}" if node.error else "")
        )
    ids = [n.id for n in nodes]
    return go.Bar(
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
    )
