"""Replay: a saved run as it stood at any moment, for playing it back as it happened."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

from pdr_core.trace import Trace


def _time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def parse_stamp(value: str | None) -> datetime | None:
    """A trace's time stamp, or None when absent or unreadable; naive times taken as UTC."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    # Imported traces may carry naive times; compare everything as UTC.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def shown_share(elapsed: float, span: float) -> float:
    """The share of a call's text visible `elapsed` seconds after it started, for a call that
    ran `span` seconds: its text streams in evenly over its real duration.

    This is the one rule for "what was visible at time t". The HTML report's script applies
    it in the browser (render/assets/report.js, `render`) to the spans `node_spans` gives.
    """
    return 1.0 if span <= 0 else min(max(elapsed / span, 0.0), 1.0)


def node_spans(trace: Trace) -> list[tuple[float, float]]:
    """Seconds since the first call at which each node (in trace order) started and finished;
    running nodes end at the latest time the trace records."""
    stamps = [(parse_stamp(n.started_at), parse_stamp(n.finished_at)) for n in trace.nodes]
    known = [t for pair in stamps for t in pair if t is not None]
    origin = min(known, default=None)
    horizon = max(known, default=None)

    def offset(value: datetime | None) -> float:
        return round((value - origin).total_seconds(), 3) if value and origin else 0.0

    spans = []
    for start, end in stamps:
        begin = offset(start)
        spans.append((begin, max(begin, offset(end or horizon))))
    return spans


def duration(trace: Trace) -> float:
    """Seconds from the run's start to its last recorded moment."""
    start = _time(trace.created_at)
    stamps = [trace.finished_at] + [n.finished_at or n.started_at for n in trace.nodes]
    ends = [_time(s) for s in stamps if s]
    return max([(end - start).total_seconds() for end in ends] + [0.0])


def trace_at(trace: Trace, seconds: float) -> Trace:
    """The run as it was `seconds` after it started: nodes not yet started are absent,
    nodes in flight are running with the share of their text streamed by then."""
    moment = _time(trace.created_at) + timedelta(seconds=seconds)
    past = copy.deepcopy(trace)
    nodes = []
    for node in past.nodes:
        started = _time(node.started_at)
        if started > moment:
            continue
        finished = _time(node.finished_at) if node.finished_at else None
        if finished is None or finished > moment:
            share = shown_share((moment - started).total_seconds(),
                                ((finished or moment) - started).total_seconds())
            node.text = node.text[: int(len(node.text) * share)]
            node.status, node.answer, node.correct, node.error = "running", None, None, None
            node.finished_at = None
            node.usage = {"prompt_tokens": 0, "completion_tokens": 0}
        nodes.append(node)
    past.nodes = nodes
    if past.finished_at is None or _time(past.finished_at) > moment:
        past.status = "running"
        past.final_answer = past.correct = past.error = past.stop_reason = None
        past.finished_at = None
    return past
