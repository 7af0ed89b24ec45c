"""The events a run emits: the source of truth that traces are folded from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    question: str
    reference_answer: str | None
    config: dict[str, Any]
    created_at: str = field(default_factory=now_iso)
    # A fork records the run and node it was forked from.
    parent_run_id: str | None = None
    parent_node_id: str | None = None
    # A code task's problem (pdr_core.tasks); None for a question with one final answer.
    task: dict[str, Any] | None = None


@dataclass(frozen=True)
class RunResumed:
    """An interrupted run continues: finished nodes stay, the rest is called again."""

    run_id: str
    resumed_at: str = field(default_factory=now_iso)


@dataclass(frozen=True)
class NodeStarted:
    run_id: str
    node_id: str
    stage: str  # draft | distill | refine | final
    round: int
    branch: int
    parent_ids: list[str]
    messages: list[dict[str, str]]
    started_at: str = field(default_factory=now_iso)
    # A call routed to its own model or endpoint (mixture of agents): which; never a key.
    model: str | None = None
    endpoint: str | None = None


@dataclass(frozen=True)
class NodeDelta:
    run_id: str
    node_id: str
    text: str


@dataclass(frozen=True)
class NodeFinished:
    run_id: str
    node_id: str
    text: str
    answer: str | None
    usage: dict[str, Any]
    reasoning: str = ""
    finish_reason: str | None = None
    finished_at: str = field(default_factory=now_iso)
    # Extractive distill nodes make no call; they still are nodes of the tree.
    call: bool = True
    # A fork's node copied from its parent run: no call was made for it in this run.
    reused: bool = False
    # A distill node's workspace record: kappa, tokens passed on, tokens dropped, how they
    # were counted (see pdr_core.run.workspace); None on other nodes.
    workspace: dict[str, Any] | None = None
    # A code task's generation: its program's test results (pdr_core.tasks.test_record).
    tests: dict[str, Any] | None = None


@dataclass(frozen=True)
class NodeFailed:
    run_id: str
    node_id: str
    error: str
    kind: str = "other"
    finished_at: str = field(default_factory=now_iso)
    # Text streamed before the failure, kept for the person debugging it.
    text: str = ""


@dataclass(frozen=True)
class RunFinished:
    run_id: str
    status: str  # completed | failed | interrupted
    final_answer: str | None = None
    error: str | None = None
    stop_reason: str | None = None  # e.g. "budget" when the total budget ended the run
    finished_at: str = field(default_factory=now_iso)
    # How the final answer was selected from a last round wider than 1 (e.g. the vote).
    selection: str | None = None


Event = (RunStarted | RunResumed | NodeStarted | NodeDelta | NodeFinished | NodeFailed
         | RunFinished)

EVENT_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (RunStarted, RunResumed, NodeStarted, NodeDelta, NodeFinished, NodeFailed,
                RunFinished)
}


def event_to_dict(event: Event) -> dict[str, Any]:
    """The event as a JSON-ready dict. Shallow: its lists and dicts are the event's own
    (dataclasses.asdict copied them deeply, a third of the store's cost per event)."""
    return {"type": type(event).__name__, **event.__dict__}


def event_from_dict(data: dict[str, Any]) -> Event:
    payload = dict(data)
    cls = EVENT_TYPES[payload.pop("type")]
    return cls(**payload)
