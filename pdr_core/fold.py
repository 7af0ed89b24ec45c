"""The fold of a run's events into its Trace, and back: one fold per run.

The engine, the store's writer, the live view and the replay all use this fold. A sink
that keeps a fold of what it is sent (`FoldingSink`: the store's writer) lends it to the
engine, so each event is folded, and each answer graded, once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

from pdr_core.answers import is_correct
from pdr_core.events import (
    Event,
    NodeDelta,
    NodeFailed,
    NodeFinished,
    NodeStarted,
    RunFinished,
    RunResumed,
    RunStarted,
)
from pdr_core.trace import Node, Trace, TraceError, gives_answer

EventSink = Callable[[Event], None]


class TraceBuilder:
    """Folds events into a Trace, one event at a time."""

    def __init__(self) -> None:
        self.trace: Trace | None = None
        self._nodes: dict[str, Node] = {}
        # Streamed text of nodes still running.
        self.partial: dict[str, str] = {}

    def apply(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.trace = Trace(
                id=event.run_id, question=event.question,
                reference_answer=event.reference_answer, config=event.config,
                created_at=event.created_at, parent_run_id=event.parent_run_id,
                parent_node_id=event.parent_node_id, task=event.task,
            )
            return
        trace = self.trace
        if trace is None:
            raise TraceError(f"event {type(event).__name__} arrived before RunStarted")
        if isinstance(event, RunResumed):
            _resumed(trace)
        elif isinstance(event, NodeStarted):
            self._started(trace, event)
        elif isinstance(event, NodeDelta):
            self.partial[event.node_id] = self.partial.get(event.node_id, "") + event.text
        elif isinstance(event, NodeFinished):
            _finished(trace, self._nodes[event.node_id], event)
            self.partial.pop(event.node_id, None)
        elif isinstance(event, NodeFailed):
            _failed(self._nodes[event.node_id], event, self.partial.pop(event.node_id, ""))
        elif isinstance(event, RunFinished):
            _run_finished(trace, event)

    def _started(self, trace: Trace, event: NodeStarted) -> None:
        node = Node(
            id=event.node_id, stage=event.stage, round=event.round, branch=event.branch,
            parent_ids=list(event.parent_ids), messages=[dict(m) for m in event.messages],
            started_at=event.started_at,
            model=event.model,
            endpoint=event.endpoint,
        )
        previous = self._nodes.get(node.id)
        self._nodes[node.id] = node
        if previous is None:
            trace.nodes.append(node)
        else:  # called again after a resume: the new attempt takes the old one's place
            trace.nodes[trace.nodes.index(previous)] = node


def _resumed(trace: Trace) -> None:
    trace.status = "running"
    trace.final_answer = trace.correct = trace.error = None
    trace.stop_reason = trace.finished_at = trace.final_selection = None


def _finished(trace: Trace, node: Node, event: NodeFinished) -> None:
    node.text = event.text
    node.answer = event.answer
    node.tests = event.tests
    # Workspaces and choices are not answers; only generations are marked right or wrong:
    # a program by its tests, any other answer against the reference.
    node.correct = (None if not gives_answer(node.stage)
                    else event.tests.get("correct") if event.tests is not None
                    else is_correct(event.answer, trace.reference_answer))
    node.usage = dict(event.usage)
    node.reasoning = event.reasoning
    node.finish_reason = event.finish_reason
    node.finished_at = event.finished_at
    node.call = event.call
    node.reused = event.reused
    node.workspace = event.workspace
    node.status = "ok"


def _failed(node: Node, event: NodeFailed, streamed: str) -> None:
    node.status = "failed"
    node.error = event.error
    node.error_kind = event.kind
    node.finished_at = event.finished_at
    node.text = event.text or streamed


def _run_finished(trace: Trace, event: RunFinished) -> None:
    trace.status = event.status
    trace.final_answer = event.final_answer
    trace.correct = _final_correct(trace, event.final_answer)
    trace.error = event.error
    trace.stop_reason = event.stop_reason
    trace.finished_at = event.finished_at
    trace.final_selection = event.selection


def _final_correct(trace: Trace, final: str | None) -> bool | None:
    """Whether the final answer is right: against the reference, or for code the verdict
    of the generation that wrote that program (no program fails when programs ran)."""
    if trace.task is None:
        return is_correct(final, trace.reference_answer)
    if final is None:
        return False if trace.task.get("executed") else None
    return next((n.correct for n in trace.nodes if n.tests is not None and n.answer == final),
                None)


@runtime_checkable
class FoldingSink(Protocol):
    """An event sink that folds every event it is sent into `fold` (the store's writer).
    Whoever emits through it reads that fold instead of folding the events again."""

    fold: TraceBuilder

    def __call__(self, event: Event) -> None: ...


class Folded:
    """A folding sink over a sink that keeps no fold of its own: folds, then forwards."""

    def __init__(self, sink: EventSink | None = None, fold: TraceBuilder | None = None):
        self.fold = fold or TraceBuilder()
        self._sink = sink

    def __call__(self, event: Event) -> None:
        self.fold.apply(event)
        if self._sink is not None:
            self._sink(event)


class Tee:
    """A folding sink that sends each event to `first`, then to each of `rest`; its fold
    is `first`'s (folded once, before the others see the event)."""

    def __init__(self, first: EventSink | None, *rest: EventSink | None):
        self._first = folding(first)
        self.fold = self._first.fold
        self._rest = [sink for sink in rest if sink is not None]

    def __call__(self, event: Event) -> None:
        self._first(event)
        for sink in self._rest:
            sink(event)


def folding(sink: EventSink | None) -> FoldingSink:
    """`sink` itself when it keeps a fold of what it is sent, else a sink that folds and
    then forwards to it (none: folds only)."""
    return sink if isinstance(sink, FoldingSink) else Folded(sink)


def fold(events: Iterable[Event]) -> Trace:
    """The trace that a sequence of events describes."""
    builder = TraceBuilder()
    for event in events:
        builder.apply(event)
    if builder.trace is None:
        raise TraceError("no RunStarted event: not a run")
    return builder.trace


def trace_to_events(trace: Trace) -> list[Event]:
    """Events whose fold is `trace` (how an imported trace enters the store)."""
    events: list[Event] = [
        RunStarted(
            run_id=trace.id, question=trace.question, reference_answer=trace.reference_answer,
            config=trace.config, created_at=trace.created_at,
            parent_run_id=trace.parent_run_id, parent_node_id=trace.parent_node_id,
            task=trace.task,
        )
    ]
    for n in trace.nodes:
        events.append(
            NodeStarted(trace.id, n.id, n.stage, n.round, n.branch, n.parent_ids, n.messages,
                        n.started_at, n.model, n.endpoint)
        )
        if n.status == "ok":
            events.append(
                NodeFinished(trace.id, n.id, n.text, n.answer, n.usage, n.reasoning,
                             n.finish_reason, n.finished_at or n.started_at, n.call, n.reused,
                             n.workspace, n.tests)
            )
        elif n.status == "failed":
            events.append(
                NodeFailed(trace.id, n.id, n.error or "failed", n.error_kind or "other",
                           n.finished_at or n.started_at, n.text)
            )
    if trace.status != "running":
        events.append(
            RunFinished(trace.id, trace.status, trace.final_answer, trace.error,
                        trace.stop_reason, trace.finished_at or trace.created_at,
                        trace.final_selection)
        )
    return events
