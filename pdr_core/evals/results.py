"""An evaluation's results: one graded row per cell, per-arm accuracy with its interval,
paired comparisons and the per-problem table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pdr_core.answers import answer_match
from pdr_core.evals.problems import Problem
from pdr_core.evals.records import (
    cell_runs,
)
from pdr_core.evals.spec import (
    Evaluation,
    Own,
    Setting,
)
from pdr_core.evals.stats import PairedComparison, paired_comparison, wilson_interval
from pdr_core.run.adaptive import savings
from pdr_core.run.registry import get_method
from pdr_core.store import Store
from pdr_core.trace import Trace


@dataclass
class ResultRow:
    """One cell of an evaluation: its latest run, graded (or pending, failed)."""

    problem_id: str
    method: str
    width: int
    depth: int
    max_tokens: int
    correct: bool | None
    oracle: bool | None
    b_seq: int
    b_total: int
    run_id: str
    status: str  # completed | failed | interrupted | running | pending
    label: str = ""
    reference: str = ""
    final_answer: str | None = None
    decided_by: str | None = None  # exact | math, for a correct run
    calls: int = 0
    # What stopping on agreement saved (adaptive compute; see pdr_core.run.adaptive).
    rounds_saved: int = 0
    tokens_saved: int = 0
    matched: str = ""  # see Setting.matched
    own: Own = ()  # see Setting.own

    @property
    def setting(self) -> Setting:
        return Setting(self.method, self.width, self.depth, self.max_tokens, self.matched,
                       own=self.own)


def oracle_of(trace: Trace) -> bool | None:
    """Whether any generation was right (for code: any program passed every test); None
    without a reference, or with programs that never ran."""
    graded = (trace.reference_answer is not None if trace.task is None
              else bool(trace.task.get("executed")))
    if not graded:
        return None
    return any(n.correct is True for n in trace.nodes
               if n.stage != "distill" and n.status == "ok")


def decided_by(final: str | None, problem: Problem) -> str | None:
    """The check that found a right answer right: exact or math, or a program's tests."""
    return "tests" if "tests" in problem.extra else answer_match(final, problem.answer)


def collect_results(store: Store, evaluation: Evaluation) -> list[ResultRow]:
    """One row per cell, from the store: safe to call while the evaluation runs."""
    rows = []
    for problem, setting, attempt, summary in cell_runs(store, evaluation):
        row = ResultRow(problem.id, setting.method, setting.width, setting.depth,
                        setting.max_tokens, None, None, 0, 0, "", "pending",
                        label=setting.label, reference=problem.answer,
                        matched=setting.matched, own=setting.own)
        if attempt is not None and summary is not None:
            row.run_id, row.status = summary.id, summary.status
            row.b_seq, row.b_total, row.calls = summary.b_seq, summary.b_total, summary.calls
            row.final_answer = summary.final_answer
            if summary.status == "completed":
                # Programs that never ran are neither right nor wrong.
                row.correct = None if summary.correct is None else bool(summary.correct)
                row.oracle, row.decided_by = attempt.oracle, attempt.decided_by
                if row.oracle is None:
                    # Killed between the run's end and the attempt's update: fold it.
                    row.oracle = oracle_of(store.get_trace(summary.id))
                if row.correct and row.decided_by is None:
                    row.decided_by = decided_by(summary.final_answer, problem)
                _record_savings(store, evaluation, row)
        rows.append(row)
    return rows


def _record_savings(store: Store, evaluation: Evaluation, row: ResultRow) -> None:
    """Fill in what an early stop saved; only runs that may have stopped early (an adaptive
    arm that made fewer calls than planned) are read from the store."""
    spec = evaluation.spec
    method = get_method(row.method)
    if spec.stop_when_agree is None or not method.adaptive:
        return
    if row.calls >= method.planned_calls(spec.config(row.setting)):
        return
    saved = savings(store.get_trace(row.run_id))
    if saved is not None:
        row.rounds_saved, row.tokens_saved = saved.rounds, saved.tokens


@dataclass
class SummaryRow:
    """One arm's accuracy over its graded (completed) runs, with a Wilson interval."""

    method: str
    width: int
    depth: int
    max_tokens: int
    n: int
    accuracy: float | None
    ci_low: float | None
    ci_high: float | None
    mean_b_seq: float | None
    mean_b_total: float | None
    label: str = ""
    correct: int = 0
    oracle_accuracy: float | None = None
    failed: int = 0
    pending: int = 0
    # Tokens that stopping on agreement saved, summed over the arm's completed runs.
    tokens_saved: int = 0
    matched: str = ""  # see Setting.matched
    own: Own = ()  # see Setting.own


def summarize(rows: Sequence[ResultRow], confidence: float = 0.95) -> list[SummaryRow]:
    """Per arm: accuracy, its interval and mean budgets over completed runs. Failed and
    interrupted runs are counted apart (`failed`), not as wrong answers."""
    arms: dict[Setting, list[ResultRow]] = {}
    for row in rows:
        arms.setdefault(row.setting, []).append(row)
    out = []
    for setting, group in arms.items():
        graded = [r for r in group if r.status == "completed" and r.correct is not None]
        n = len(graded)
        right = sum(1 for r in graded if r.correct)
        oracle = [r.oracle for r in graded if r.oracle is not None]
        low, high = wilson_interval(right, n, confidence) if n else (None, None)
        out.append(SummaryRow(
            setting.method, setting.width, setting.depth, setting.max_tokens, n,
            right / n if n else None, low, high,
            sum(r.b_seq for r in graded) / n if n else None,
            sum(r.b_total for r in graded) / n if n else None,
            label=group[0].label or setting.label, correct=right,
            oracle_accuracy=sum(oracle) / len(oracle) if oracle else None,
            failed=sum(1 for r in group if r.status in ("failed", "interrupted")),
            pending=sum(1 for r in group if r.status in ("pending", "running")),
            tokens_saved=sum(r.tokens_saved for r in graded),
            matched=setting.matched, own=setting.own,
        ))
    return out


def compare(rows: Sequence[ResultRow], label_a: str, label_b: str,
            alpha: float = 0.05) -> PairedComparison:
    """McNemar's exact test between two arms (by label) on the problems both completed."""
    def graded(label: str) -> dict[str, bool]:
        return {r.problem_id: bool(r.correct) for r in rows
                if r.label == label and r.status == "completed" and r.correct is not None}

    return paired_comparison(graded(label_a), graded(label_b), alpha, label_a, label_b)


RUN_LINK_SUFFIX = " run"


def per_problem_table(rows: Sequence[ResultRow],
                      run_link: Callable[[str], str] | None = None) -> list[dict[str, str]]:
    """One row per problem, one column per arm: right, wrong, or the run's state. With
    `run_link`, each arm also gets a column (its label + RUN_LINK_SUFFIX) holding
    `run_link(run id)`, empty where the arm has no run yet."""
    marks = {True: "right", False: "wrong", None: "not graded"}
    table: dict[str, dict[str, str]] = {}
    for row in rows:
        entry = table.setdefault(row.problem_id, {"problem": row.problem_id,
                                                  "reference": row.reference})
        entry[row.label] = marks[row.correct] if row.status == "completed" else row.status
        if row.status == "completed" and row.oracle and not row.correct:
            entry[row.label] = "wrong (a draft was right)"
    if run_link is not None:
        for row in rows:
            link = run_link(row.run_id) if row.run_id else ""
            table[row.problem_id][row.label + RUN_LINK_SUFFIX] = link
    return list(table.values())
