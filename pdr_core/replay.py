"""Replay: a saved run as it stood at any moment, for playing it back as it happened."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta

from pdr_core.trace import Trace


def _time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


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
            span = ((finished or moment) - started).total_seconds()
            share = 1.0 if span <= 0 else (moment - started).total_seconds() / span
            node.text = node.text[: int(len(node.text) * min(share, 1.0))]
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
