"""Two runs side by side: settings, nodes aligned by position, per-stage cost, results.

Runs of any methods and shapes are compared: nodes are aligned by (round, stage, branch),
and a position that only one run has is paired with None. Draft, refine and final count as
one stage for the alignment: "final" only marks a method's last round, so a single pass
(r1-final-0) lines up with a vote's first sample (r1-draft-0), and a depth-2 run's
r2-final-0 with a depth-3 run's r2-refine-0; such a row's stage reads "draft/final".
Distill nodes align only with distill nodes. Answers are the same as each run's key says
(`pdr_core.tasks.trace_key`): the normal form, or for code runs the programs' behaviour on
the tests. Everything here is plain data (frozen dataclasses) so the page only lays it out.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import plotly.graph_objects as go

from pdr_core.answers import AnswerKey, answer_clusters
from pdr_core.budgets import is_settled_call
from pdr_core.tasks import answer_text, trace_key
from pdr_core.trace import Node, RunOutcome, Trace, gives_answer

_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")

# The settings a person compares runs by, as named in the pdr-trace/1 `config`.
SETTING_KEYS = (
    "method",
    "width_schedule",
    "depth",
    "distill",
    "k",
    "max_tokens",
    "workspace_tokens",
    "total_budget",
    "temperature",
    "seed",
    "model",
)
# Alignment slots: every generation stage shares one; within a round the generations come
# before the distill that reads them.
_SLOT = {"draft": 0, "refine": 0, "final": 0, "distill": 1}
SAME = "the same"


@dataclass(frozen=True)
class Setting:
    """One configuration key in both runs; None where a run's config lacks it."""

    key: str
    a: Any
    b: Any

    @property
    def differs(self) -> bool:
        return self.a != self.b


@dataclass(frozen=True)
class NodeSide:
    """What the comparison shows of one node."""

    id: str
    stage: str
    answer: str | None
    correct: bool | None
    status: str
    tokens: int
    seconds: float | None
    call: bool
    reused: bool
    key: str | None = None  # the answer's identity in its run (behaviour, for a program)
    label: str = ""  # the answer to show: itself, or what a program's tests said


@dataclass(frozen=True)
class AlignedRow:
    """One (round, stage, branch) position; a side is None where that run has no node.
    `stage` is the shared stage name, or "draft/final" where the sides name it apart."""

    round: int
    stage: str
    branch: int
    a: NodeSide | None
    b: NodeSide | None

    @property
    def same_answer(self) -> bool | None:
        """Whether both sides gave the same answer (normalised, or for programs the same
        behaviour); None if either gave none."""
        if self.a is None or self.b is None or self.a.key is None or self.b.key is None:
            return None
        return self.a.key == self.b.key


@dataclass(frozen=True)
class StageStats:
    """One (round, stage) group of one run. `seconds` is wall time, first start to last
    finish; `answers` is (answer as first written, count), most common first; a program
    is written as what its tests said, and programs count as one answer when they behave
    the same."""

    nodes: int
    calls: int
    failed: int
    tokens: int
    seconds: float | None
    answers: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class StageRow:
    """One (round, stage) group in both runs; a side is None where that run has none."""

    round: int
    stage: str
    a: StageStats | None
    b: StageStats | None

    @property
    def label(self) -> str:
        return f"R{self.round} {self.stage}"


@dataclass(frozen=True)
class RunResult(RunOutcome):
    """The outcome of one run. `calls` counts failed calls too, `failed` only those;
    `seconds` runs from creation to finish (None while running); `final_node_id` is the
    node `final_node` picks (None when no generation finished)."""

    run_id: str
    failed: int
    seconds: float | None
    final_node_id: str | None
    stop_reason: str | None


@dataclass(frozen=True)
class Verdict:
    """Which run reached its answer at the lower B_seq.

    `lower` is "the same", "A" or "B", or None with `reason` saying why it cannot be said.
    `cheaper_correct` is whether the cheaper run was right (None when unknown or equal B_seq).
    `text` is the sentence the page shows.
    """

    lower: str | None
    reason: str | None
    cheaper_correct: bool | None
    text: str


@dataclass(frozen=True)
class Comparison:
    settings: tuple[Setting, ...]
    differences: tuple[str, ...]
    rows: tuple[AlignedRow, ...]
    stages: tuple[StageRow, ...]
    a: RunResult
    b: RunResult
    verdict: Verdict
    same_question: bool


def compare_runs(a: Trace, b: Trace) -> Comparison:
    """Compare run `a` with run `b` (any methods, any shapes)."""
    settings = _settings(a.config, b.config)
    result_a, result_b = _result(a), _result(b)
    return Comparison(
        settings=settings,
        differences=tuple(s.key for s in settings if s.differs),
        rows=_align(a.nodes, b.nodes, trace_key(a), trace_key(b)),
        stages=_stage_rows(a.nodes, b.nodes, trace_key(a), trace_key(b)),
        a=result_a,
        b=result_b,
        verdict=_verdict(result_a, result_b),
        same_question=a.question.strip() == b.question.strip(),
    )


# --- settings -------------------------------------------------------------------------------


def _frozen(value: Any) -> Any:
    # JSON lists (the width schedule) become tuples, so values compare and display alike.
    return tuple(value) if isinstance(value, list) else value


def _settings(a: dict[str, Any], b: dict[str, Any]) -> tuple[Setting, ...]:
    return tuple(Setting(key, _frozen(a.get(key)), _frozen(b.get(key))) for key in SETTING_KEYS)


# --- nodes ----------------------------------------------------------------------------------


def _time(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp)
    except ValueError:  # an imported trace with an odd timestamp
        return None


def _span(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    try:
        return (end - start).total_seconds()
    except TypeError:  # one timestamp with a zone, one without
        return None


def _seconds_between(start: str | None, end: str | None) -> float | None:
    return _span(_time(start), _time(end))


def _side(node: Node, key: AnswerKey) -> NodeSide:
    return NodeSide(
        id=node.id,
        stage=node.stage,
        answer=node.answer,
        correct=node.correct,
        status=node.status,
        tokens=node.tokens,
        seconds=_seconds_between(node.started_at, node.finished_at),
        call=node.call,
        reused=node.reused,
        key=key(node.answer),
        label=answer_text(node.answer, node.tests),
    )


def _position(node: Node) -> tuple[int, int, int]:
    return (node.round, _SLOT.get(node.stage, len(_SLOT)), node.branch)


def _stage_name(*stages: str | None) -> str:
    """The stage of an aligned row or group: one name, or each side's joined by "/"."""
    names = list(dict.fromkeys(s for s in stages if s))
    return "/".join(names)


def _keyed(nodes: Iterable[Node]) -> dict[tuple[int, int, int, int], Node]:
    """Nodes by position; a repeated position (possible only in a hand-made import) gets
    an occurrence count so no node is dropped."""
    keyed: dict[tuple[int, int, int, int], Node] = {}
    for node in nodes:
        occurrence = 0
        while (*_position(node), occurrence) in keyed:
            occurrence += 1
        keyed[(*_position(node), occurrence)] = node
    return keyed


def _pairs(a: dict[_K, _V], b: dict[_K, _V]) -> Iterator[tuple[_K, _V | None, _V | None]]:
    """Every key of either side, in order, with each side's value (None where it has none)."""
    for key in sorted(a.keys() | b.keys()):
        yield key, a.get(key), b.get(key)


def _align(a: Iterable[Node], b: Iterable[Node], key_a: AnswerKey, key_b: AnswerKey
           ) -> tuple[AlignedRow, ...]:
    rows = []
    for _, node_a, node_b in _pairs(_keyed(a), _keyed(b)):
        some = node_a or node_b
        assert some is not None
        rows.append(AlignedRow(
            round=some.round, branch=some.branch,
            stage=_stage_name(*(n.stage if n else None for n in (node_a, node_b))),
            a=_side(node_a, key_a) if node_a else None,
            b=_side(node_b, key_b) if node_b else None,
        ))
    return tuple(rows)


def _stage_stats(nodes: list[Node], key: AnswerKey) -> StageStats:
    # Calls and tokens follow compute_budget: settled calls, extractive distills excluded.
    settled = [n for n in nodes if is_settled_call(n)]
    starts = [_time(n.started_at) for n in nodes]
    ends = [_time(n.finished_at) for n in nodes]
    seconds = None
    # Wall time only once every node has settled and every timestamp reads.
    if None not in starts and None not in ends:
        try:
            seconds = _span(min(starts), max(ends))  # type: ignore[type-var]
        except TypeError:  # zones mixed across nodes
            seconds = None
    answered = [n for n in nodes if n.status == "ok"]
    clusters = answer_clusters([n.answer for n in answered], key)
    answers = tuple((answer_text(answered[members[0]].answer, answered[members[0]].tests),
                     len(members)) for _, members in clusters)
    return StageStats(
        nodes=len(nodes),
        calls=len(settled),
        failed=sum(n.status == "failed" for n in nodes),
        tokens=sum(n.tokens for n in settled),
        seconds=seconds,
        answers=answers,
    )


def _groups(nodes: Iterable[Node]) -> dict[tuple[int, int], list[Node]]:
    groups: dict[tuple[int, int], list[Node]] = {}
    for node in nodes:
        groups.setdefault(_position(node)[:2], []).append(node)
    return groups


def _stage_rows(a: Iterable[Node], b: Iterable[Node], key_a: AnswerKey, key_b: AnswerKey
                ) -> tuple[StageRow, ...]:
    rows = []
    for key, nodes_a, nodes_b in _pairs(_groups(a), _groups(b)):
        stages = [n.stage for n in (nodes_a or []) + (nodes_b or [])]
        rows.append(StageRow(
            round=key[0], stage=_stage_name(*stages),
            a=_stage_stats(nodes_a, key_a) if nodes_a else None,
            b=_stage_stats(nodes_b, key_b) if nodes_b else None,
        ))
    return tuple(rows)


# --- results --------------------------------------------------------------------------------


def final_node(trace: Trace) -> Node | None:
    """The node whose text stands for the run's output.

    The answer-bearing last round is the latest round with a finished generation (a run
    stopped by its budget ends early). With one node there, that node; with several (vote,
    a wide last round) the first in branch order whose answer is the run's final answer,
    which is the voter `majority_vote` takes the answer from; with no winner (no answer,
    a failed run), the first finished node of that round. None when no generation finished.
    """
    done = [n for n in trace.nodes if gives_answer(n.stage) and n.status == "ok"]
    if not done:
        return None
    last = max(n.round for n in done)
    candidates = sorted((n for n in done if n.round == last), key=lambda n: n.branch)
    key = trace_key(trace)
    wanted = key(trace.final_answer)
    if wanted is not None:
        for node in candidates:
            if key(node.answer) == wanted:
                return node
    return candidates[0]


def final_outputs(a: Trace, b: Trace) -> tuple[str, str]:
    """The texts of each run's final node (see `final_node`); "" for a run without one."""
    node_a, node_b = final_node(a), final_node(b)
    return (node_a.text if node_a else "", node_b.text if node_b else "")


def _result(trace: Trace) -> RunResult:
    node = final_node(trace)
    finished = trace.finished_at if trace.status != "running" else None
    return RunResult(
        **vars(trace.outcome),
        run_id=trace.id,
        failed=sum(n.status == "failed" for n in trace.nodes),
        seconds=_seconds_between(trace.created_at, finished),
        final_node_id=node.id if node else None,
        stop_reason=trace.stop_reason,
    )


def _unusable(name: str, result: RunResult) -> str | None:
    """Why run `name` has no answer to weigh, or None when it has one."""
    if result.status == "running":
        return f"run {name} is still running"
    if result.status == "failed":
        return f"run {name} failed"
    if result.status == "interrupted":
        return f"run {name} was interrupted"
    if result.final_answer is None:
        return f"run {name} has no answer"
    return None


def _right(correct: bool | None) -> str:
    return "right" if correct else "wrong"


def _verdict(a: RunResult, b: RunResult) -> Verdict:
    reasons = [r for r in (_unusable("A", a), _unusable("B", b)) if r]
    if reasons:
        reason = "; ".join(reasons)
        return Verdict(None, reason, None,
                       f"Can't say which run reached its answer at the lower B_seq: {reason}.")
    if a.b_seq == b.b_seq:
        text = f"Both runs reached their answers at the same B_seq ({a.b_seq:,} tokens)."
        if a.correct is not None and b.correct is not None:
            text += (f" Both were {_right(a.correct)}." if a.correct == b.correct else
                     f" A was {_right(a.correct)}, B was {_right(b.correct)}.")
        return Verdict(SAME, None, None, text)
    lower, cheap, dear = ("A", a, b) if a.b_seq < b.b_seq else ("B", b, a)
    saved = 1 - cheap.b_seq / dear.b_seq
    text = (f"Run {lower} reached its answer at the lower B_seq: {cheap.b_seq:,} against "
            f"{dear.b_seq:,} tokens ({saved:.0%} less).")
    if cheap.correct is not None:
        text += (" It was right." if cheap.correct else " It was wrong.")
        if dear.correct is not None:
            other = "B" if lower == "A" else "A"
            text += f" Run {other} was {_right(dear.correct)}."
    return Verdict(lower, None, cheap.correct, text)


# --- figure ---------------------------------------------------------------------------------


def stage_figure(comparison: Comparison, metric: str = "tokens") -> go.Figure:
    """Grouped bars of `metric` ("tokens" or "seconds") per (round, stage), A beside B.

    Labels are stage names and run letters only: no model text reaches the figure.
    """
    if metric not in ("tokens", "seconds"):
        raise ValueError(f"metric={metric!r} is invalid: tokens or seconds")
    labels = [row.label for row in comparison.stages]
    figure = go.Figure()
    for name, side in (("A", 0), ("B", 1)):
        values = []
        for row in comparison.stages:
            stats = (row.a, row.b)[side]
            values.append(getattr(stats, metric) if stats is not None else None)
        figure.add_trace(go.Bar(name=name, x=labels, y=values))
    figure.update_layout(
        barmode="group",
        height=320,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        yaxis_title="tokens" if metric == "tokens" else "seconds (wall)",
        legend_title_text="run",
    )
    return figure
