"""Runs, nodes and budgets as plain dataclasses, folded from events; pdr-trace/1 JSON."""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

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
from pdr_core.heap import bulk_build

FORMAT = "pdr-trace/1"
# The built-in stages, in pipeline order; stage names are open: any name matching
# STAGE_NAME is a stage.
STAGES = ("draft", "verify", "distill", "refine", "aggregate", "judge", "select", "final")
STAGE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
# Stages whose output is not an answer to the question: a workspace, a choice among
# candidates, or a draft's score. Every other stage is a generation, with an answer marked
# right or wrong.
ANSWERLESS_STAGES = frozenset({"distill", "judge", "select", "verify"})
STATUSES = ("running", "completed", "failed", "interrupted")
# Imports larger than this are refused before parsing.
MAX_IMPORT_BYTES = 50 * 1024 * 1024
# Traces with more nodes are refused: twelve times the largest run this tool makes (width
# 256, depth 32: 8,224 nodes), and what the store imports in seconds (BENCHMARKS.md).
MAX_TRACE_NODES = 100_000


def gives_answer(stage: str) -> bool:
    """Whether a node of `stage` answers the question (see ANSWERLESS_STAGES)."""
    return stage not in ANSWERLESS_STAGES


class TraceError(ValueError):
    """A trace that cannot be read; the message says what is wrong with it."""


@dataclass
class Node:
    id: str
    stage: str
    round: int
    branch: int
    parent_ids: list[str]
    messages: list[dict[str, str]]
    started_at: str
    text: str = ""
    answer: str | None = None
    correct: bool | None = None
    usage: dict[str, Any] = field(
        default_factory=lambda: {"prompt_tokens": 0, "completion_tokens": 0}
    )
    finished_at: str | None = None
    status: str = "running"  # running | ok | failed
    error: str | None = None
    error_kind: str | None = None
    reasoning: str = ""
    finish_reason: str | None = None
    call: bool = True
    reused: bool = False
    # Distill nodes: how the workspace passed on was bounded (pdr_core.run.workspace).
    workspace: dict[str, Any] | None = None
    # Code tasks: the program's test results (pdr_core.tasks.test_record).
    tests: dict[str, Any] | None = None
    # A call routed to its own model or endpoint (mixture of agents); None: the run's.
    model: str | None = None
    endpoint: str | None = None

    @property
    def tokens(self) -> int:
        return int(self.usage.get("prompt_tokens", 0)) + int(
            self.usage.get("completion_tokens", 0)
        )


@dataclass
class Budget:
    b_seq: int = 0
    b_total: int = 0
    calls: int = 0


@dataclass
class Trace:
    id: str
    question: str
    reference_answer: str | None
    config: dict[str, Any]
    created_at: str
    status: str = "running"
    nodes: list[Node] = field(default_factory=list)
    final_answer: str | None = None
    correct: bool | None = None
    error: str | None = None
    stop_reason: str | None = None
    finished_at: str | None = None
    parent_run_id: str | None = None
    parent_node_id: str | None = None
    # How the final answer was selected when the last round left several (RunFinished).
    final_selection: str | None = None
    # A code task's problem and whether its programs ran (pdr_core.tasks); None for math.
    task: dict[str, Any] | None = None
    # The user's label for the run (the store's name and tags), kept in exports and reports.
    name: str | None = None
    tags: list[str] = field(default_factory=list)

    def node(self, node_id: str) -> Node:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    @property
    def budget(self) -> Budget:
        return compute_budget(self.nodes)

    def to_dict(self) -> dict[str, Any]:
        budget = self.budget
        return {
            "format": FORMAT,
            "id": self.id,
            "created_at": self.created_at,
            "question": self.question,
            "reference_answer": self.reference_answer,
            "config": self.config,
            "status": self.status,
            "nodes": [_node_to_dict(n) for n in self.nodes],
            "final_answer": self.final_answer,
            "correct": self.correct,
            "budget": {"b_seq": budget.b_seq, "b_total": budget.b_total, "calls": budget.calls},
            "error": self.error,
            "stop_reason": self.stop_reason,
            "finished_at": self.finished_at,
            "parent_run_id": self.parent_run_id,
            "parent_node_id": self.parent_node_id,
            "final_selection": self.final_selection,
            "task": self.task,
            "name": self.name,
            "tags": list(self.tags),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


def compute_budget(nodes: Iterable[Node]) -> Budget:
    """B_total sums every settled call; B_seq is the token-weighted longest path through
    the call graph (see `longest_token_path`)."""
    nodes = list(nodes)
    calls = [n for n in nodes if n.call and n.status != "running"]
    b_seq, _ = longest_token_path(nodes)
    return Budget(b_seq=b_seq, b_total=sum(n.tokens for n in calls), calls=len(calls))


def longest_token_path(nodes: Iterable[Node]) -> tuple[int, list[str]]:
    """B_seq and the ids of the path that sets it, root first.

    A node weighs its prompt plus completion tokens when it is a settled call and nothing
    otherwise (an extractive workspace, a call still running), so the heaviest path passes
    through extractive nodes without cost and through every distill or other call it
    depends on. One rule for every method and shape: forks, resumed runs and irregular
    schedules included.
    """
    total, path = critical_path(nodes, settled_tokens, operator.add)
    return int(total), path


def settled_tokens(node: Node) -> float:
    """A node's weight on the token critical path: its tokens if it is a settled call."""
    return node.tokens if node.call and node.status != "running" else 0


def critical_path(nodes: Iterable[Node], weight: Callable[[Node], float],
                  combine: Callable[[float, float], float]) -> tuple[float, list[str]]:
    """The heaviest path through the call graph and its value, ids root first.

    The graph has an edge from each parent id to its node; a node's value is
    `combine(weight(node), value of its heaviest parent)`: summed tokens give B_seq
    (`longest_token_path`), the latest finish time (`max`) gives the latency critical
    path. Parents precede their node in a trace (the engine emits them so, and imports are
    checked for it); a parent id that does not is ignored, so nothing can loop. Ties go to
    the parent listed first.
    """
    best: dict[str, tuple[float, str | None]] = {}
    for node in nodes:
        before = [p for p in node.parent_ids if p in best]
        previous = max(before, key=lambda p: best[p][0], default=None)
        value = weight(node)
        best[node.id] = (combine(value, best[previous][0]) if previous else value, previous)
    if not best:
        return 0, []
    end: str | None = max(best, key=lambda i: best[i][0])
    total = best[end][0]
    path = []
    while end is not None:
        path.append(end)
        end = best[end][1]
    return total, path[::-1]


class TraceBuilder:
    """Folds events into a Trace; the live view and the replay use the same fold."""

    def __init__(self) -> None:
        self.trace: Trace | None = None
        self._nodes: dict[str, Node] = {}
        # Streamed text of nodes still running.
        self.partial: dict[str, str] = {}

    def apply(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.trace = Trace(
                id=event.run_id,
                question=event.question,
                reference_answer=event.reference_answer,
                config=event.config,
                created_at=event.created_at,
                parent_run_id=event.parent_run_id,
                parent_node_id=event.parent_node_id,
                task=event.task,
            )
            return
        trace = self.trace
        if trace is None:
            raise TraceError(f"event {type(event).__name__} arrived before RunStarted")
        if isinstance(event, RunResumed):
            trace.status = "running"
            trace.final_answer = trace.correct = trace.error = None
            trace.stop_reason = trace.finished_at = trace.final_selection = None
        elif isinstance(event, NodeStarted):
            node = Node(
                id=event.node_id,
                stage=event.stage,
                round=event.round,
                branch=event.branch,
                parent_ids=list(event.parent_ids),
                messages=[dict(m) for m in event.messages],
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
        elif isinstance(event, NodeDelta):
            self.partial[event.node_id] = self.partial.get(event.node_id, "") + event.text
        elif isinstance(event, NodeFinished):
            node = self._nodes[event.node_id]
            node.text = event.text
            node.answer = event.answer
            node.tests = event.tests
            # Workspaces and choices are not answers; only generations are marked right or
            # wrong: a program by its tests, any other answer against the reference.
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
            self.partial.pop(event.node_id, None)
        elif isinstance(event, NodeFailed):
            node = self._nodes[event.node_id]
            node.status = "failed"
            node.error = event.error
            node.error_kind = event.kind
            node.finished_at = event.finished_at
            node.text = event.text or self.partial.pop(event.node_id, "")
            self.partial.pop(event.node_id, None)
        elif isinstance(event, RunFinished):
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
            run_id=trace.id,
            question=trace.question,
            reference_answer=trace.reference_answer,
            config=trace.config,
            created_at=trace.created_at,
            parent_run_id=trace.parent_run_id,
            parent_node_id=trace.parent_node_id,
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


def _node_to_dict(n: Node) -> dict[str, Any]:
    return {
        "id": n.id,
        "stage": n.stage,
        "round": n.round,
        "branch": n.branch,
        "parent_ids": n.parent_ids,
        "messages": n.messages,
        "text": n.text,
        "answer": n.answer,
        "correct": n.correct,
        "usage": n.usage,
        "started_at": n.started_at,
        "finished_at": n.finished_at,
        "status": "ok" if n.status == "ok" else "failed" if n.status == "failed" else "running",
        "error": n.error,
        "error_kind": n.error_kind,
        "reasoning": n.reasoning,
        "finish_reason": n.finish_reason,
        "call": n.call,
        "reused": n.reused,
        "workspace": n.workspace,
        "tests": n.tests,
        # Only routed calls have them: other traces keep their shape.
        **({"model": n.model, "endpoint": n.endpoint} if n.model or n.endpoint else {}),
    }


# Keys pdr-trace/1 promises, with the JSON types each may take.
_TOP_KEYS: dict[str, tuple[type, ...]] = {
    "format": (str,),
    "id": (str,),
    "created_at": (str,),
    "question": (str,),
    "reference_answer": (str, type(None)),
    "config": (dict,),
    "status": (str,),
    "nodes": (list,),
    "final_answer": (str, type(None)),
    "correct": (bool, type(None)),
    "budget": (dict,),
}
_NODE_KEYS: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "stage": (str,),
    "round": (int,),
    "branch": (int,),
    "parent_ids": (list,),
    "messages": (list,),
    "text": (str,),
    "answer": (str, type(None)),
    "correct": (bool, type(None)),
    "usage": (dict,),
    "started_at": (str,),
    "finished_at": (str, type(None)),
    "status": (str,),
    "error": (str, type(None)),
}
# Keys a trace may lack (older versions) but that must have these types when present: the
# store writes them to columns and the pages compute with them.
_OPTIONAL_TOP_KEYS: dict[str, tuple[type, ...]] = {
    "error": (str, type(None)),
    "stop_reason": (str, type(None)),
    "finished_at": (str, type(None)),
    "parent_run_id": (str, type(None)),
    "parent_node_id": (str, type(None)),
    "final_selection": (str, type(None)),
    "task": (dict, type(None)),
    "name": (str, type(None)),
    "tags": (list,),
}
_OPTIONAL_NODE_KEYS: dict[str, tuple[type, ...]] = {
    "error_kind": (str, type(None)),
    "reasoning": (str, type(None)),
    "finish_reason": (str, type(None)),
    "call": (bool,),
    "reused": (bool,),
    "workspace": (dict, type(None)),
    "tests": (dict, type(None)),
    "model": (str, type(None)),
    "endpoint": (str, type(None)),
}
_CONFIG_KEYS: dict[str, tuple[type, ...]] = {
    "method": (str,),
    "model": (str, type(None)),
    "base_url": (str, type(None)),
    "distill": (str, type(None)),
    "width_schedule": (list,),
    "depth": (int,),
    "width": (int,),
    "k": (int,),
    "max_tokens": (int,),
    "workspace_tokens": (int,),
    "total_budget": (int, type(None)),
    "distill_max_tokens": (int, type(None)),
    "sr_summary": (bool,),
    "sr_feedback": (bool,),
    "temperature": (int, float),
    "seed": (int,),
    "concurrency": (int,),
    "prompts": (dict,),
}
# Token counts above this are not real (and would overflow the store's integer columns).
MAX_TOKENS_PER_CALL = 10**12
# Deeper JSON than this is refused: folding and storing a trace copies it recursively.
MAX_NESTING = 64


def trace_from_dict(data: Any) -> Trace:
    """Validate a pdr-trace/1 object and build a Trace; raises TraceError saying what is wrong."""
    if not isinstance(data, dict):
        raise TraceError(f"a trace is a JSON object, this file holds a {type(data).__name__}")
    fmt = data.get("format")
    if fmt != FORMAT:
        if isinstance(fmt, str) and fmt.startswith("pdr-trace/"):
            raise TraceError(f"trace format version '{fmt}' is not supported; expected '{FORMAT}'")
        raise TraceError(f"not a PDR trace: 'format' is {fmt!r}, expected '{FORMAT}'")
    _check_keys(data, _TOP_KEYS, "trace")
    _check_keys(data, _OPTIONAL_TOP_KEYS, "trace", required=False)
    if not data["id"]:
        raise TraceError("trace 'id' is empty")
    if len(data["nodes"]) > MAX_TRACE_NODES:
        raise TraceError(
            f"the trace has {len(data['nodes']):,} nodes; traces of more than "
            f"{MAX_TRACE_NODES:,} are refused (the largest run this tool makes has 8,224)"
        )
    _check_config(data["config"])
    _check_text(data)
    if not all(isinstance(t, str) for t in data.get("tags", [])):
        raise TraceError("trace 'tags' must be a list of strings")
    if data["status"] not in STATUSES:
        raise TraceError(f"trace 'status' is {data['status']!r}; expected one of {STATUSES}")
    nodes = []
    seen: set[str] = set()
    for index, raw in enumerate(data["nodes"]):
        where = f"node {index}"
        if not isinstance(raw, dict):
            raise TraceError(f"{where} is not a JSON object")
        _check_keys(raw, _NODE_KEYS, where)
        _check_keys(raw, _OPTIONAL_NODE_KEYS, where, required=False)
        if not STAGE_NAME.fullmatch(raw["stage"]):
            raise TraceError(f"{where}: 'stage' is {raw['stage']!r}; expected a stage name "
                             f"(lower-case letters, digits, - or _), e.g. one of {STAGES}")
        if raw["status"] not in ("ok", "failed", "running"):
            raise TraceError(f"{where}: 'status' is {raw['status']!r}; expected ok or failed")
        if raw["id"] in seen:
            raise TraceError(f"{where}: duplicate node id {raw['id']!r}")
        if not all(isinstance(p, str) for p in raw["parent_ids"]):
            raise TraceError(f"{where}: 'parent_ids' must be a list of node id strings")
        missing_parents = [p for p in raw["parent_ids"] if p not in seen]
        if missing_parents:
            raise TraceError(f"{where}: parent ids {missing_parents} do not precede it")
        for m in raw["messages"]:
            if not (isinstance(m, dict) and isinstance(m.get("role"), str)
                    and isinstance(m.get("content"), str)):
                raise TraceError(f"{where}: each message needs string 'role' and 'content'")
        usage = raw["usage"]
        for key in ("prompt_tokens", "completion_tokens", "reasoning_tokens"):
            value = usage.get(key, 0)
            if (not isinstance(value, int) or isinstance(value, bool)
                    or not 0 <= value <= MAX_TOKENS_PER_CALL):
                raise TraceError(
                    f"{where}: usage.{key} must be a whole number from 0 to "
                    f"{MAX_TOKENS_PER_CALL}, not {value!r}"[:200]
                )
        seen.add(raw["id"])
        nodes.append(
            Node(
                id=raw["id"], stage=raw["stage"], round=raw["round"], branch=raw["branch"],
                parent_ids=list(raw["parent_ids"]), messages=raw["messages"],
                started_at=raw["started_at"], text=raw["text"], answer=raw["answer"],
                correct=raw["correct"], usage=usage, finished_at=raw["finished_at"],
                status=raw["status"], error=raw["error"], error_kind=raw.get("error_kind"),
                reasoning=str(raw.get("reasoning") or ""),
                finish_reason=raw.get("finish_reason"), call=bool(raw.get("call", True)),
                reused=bool(raw.get("reused", False)), workspace=raw.get("workspace"),
                tests=raw.get("tests"), model=raw.get("model"),
                endpoint=raw.get("endpoint"),
            )
        )
    return Trace(
        id=data["id"], question=data["question"], reference_answer=data["reference_answer"],
        config=data["config"], created_at=data["created_at"], status=data["status"],
        nodes=nodes, final_answer=data["final_answer"], correct=data["correct"],
        error=data.get("error"), stop_reason=data.get("stop_reason"),
        finished_at=data.get("finished_at"), parent_run_id=data.get("parent_run_id"),
        parent_node_id=data.get("parent_node_id"),
        final_selection=data.get("final_selection"), task=data.get("task"),
        name=data.get("name"), tags=list(data.get("tags", [])),
    )


def trace_from_json(text: str | bytes) -> Trace:
    """Parse and validate a pdr-trace/1 document."""
    if len(text) > MAX_IMPORT_BYTES:
        raise TraceError(
            f"file is {len(text) / 1e6:.0f} MB; traces over {MAX_IMPORT_BYTES // 2**20} MiB "
            "are refused"
        )
    try:
        with bulk_build():
            data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TraceError(f"not valid JSON: {exc}") from None
    except RecursionError:
        raise TraceError("not a PDR trace: the JSON is nested too deeply") from None
    except ValueError as exc:  # e.g. a number of more than 4300 digits
        raise TraceError(f"not a PDR trace: {exc}"[:300]) from None
    with bulk_build():
        return trace_from_dict(data)


def _check_config(config: dict) -> None:
    _check_keys(config, _CONFIG_KEYS, "config", required=False)
    schedule = config.get("width_schedule")
    if schedule is not None and not all(
        isinstance(w, int) and not isinstance(w, bool) for w in schedule
    ):
        raise TraceError("config: 'width_schedule' must be a list of whole numbers")
    prompts = config.get("prompts")
    if prompts is not None and not all(isinstance(v, str) for v in prompts.values()):
        raise TraceError("config: each of 'prompts' must be a string")


def _check_text(data: Any) -> None:
    """Refuse strings that are not Unicode text (lone surrogates from `\\ud800` escapes) and
    nesting deeper than MAX_NESTING: neither can be stored or shown. Iterative, so it cannot
    overflow the stack itself."""
    stack = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)) and depth >= MAX_NESTING:
            raise TraceError(
                f"the trace nests objects and lists more than {MAX_NESTING} levels deep; "
                "a pdr-trace/1 file never does: it is damaged or not a trace"
            )
        if isinstance(value, dict):
            stack.extend((key, depth + 1) for key in value)
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise TraceError(
                    f"the trace holds text that is not valid Unicode (a lone surrogate such as "
                    f"\\ud800) near {value[:40]!r}; fix or remove that text"
                ) from None


def _check_keys(data: dict, spec: dict[str, tuple[type, ...]], where: str,
                required: bool = True) -> None:
    for key, types in spec.items():
        if key not in data:
            if not required:
                continue
            raise TraceError(f"{where} is missing the key '{key}'")
        value = data[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise TraceError(f"{where}: '{key}' must be {names}, not {type(value).__name__}")
