"""Evaluations: every problem x method x setting as a stored run, then accuracy vs budget.

An evaluation is a record in the run store (tables `eval_evaluations` and `eval_attempts`,
created here, beside the store's own tables): its spec, its problems, and which run was made
for which cell. All its runs go through one event loop with a bounded number in flight.
Re-running an evaluation id skips cells whose latest run completed and runs the others
again (failed, interrupted, never started), so a killed evaluation resumes where it
stopped. A failed run is reported as failed: never graded wrong, never dropped.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from pdr_core.adaptive import savings
from pdr_core.answers import answer_match
from pdr_core.baseline import baseline_config
from pdr_core.config import ConfigError, RunConfig
from pdr_core.datasets import Problem, fingerprint
from pdr_core.events import now_iso
from pdr_core.method_builtins import get_method, method_registry
from pdr_core.methods import new_run_id, resume, run
from pdr_core.preview import preview
from pdr_core.providers.base import Provider
from pdr_core.runner import LoopThread
from pdr_core.stats import PairedComparison, paired_comparison, wilson_interval
from pdr_core.store import EVAL_TAG_PREFIX, RunSummary, Store
from pdr_core.tasks import task_for_problem
from pdr_core.trace import Trace

FORMAT = "pdr-eval/1"
# The methods an evaluation runs unless told otherwise (any registered method may be named).
DEFAULT_METHODS = ("single", "vote", "sr", "pdr")
RESULT_COLUMNS = ("problem_id", "method", "width", "depth", "max_tokens", "correct", "oracle",
                  "b_seq", "b_total", "rounds_saved", "tokens_saved", "run_id", "status",
                  "matched")
SUMMARY_COLUMNS = ("method", "width", "depth", "max_tokens", "n", "accuracy", "ci_low",
                   "ci_high", "mean_b_seq", "mean_b_total", "tokens_saved", "matched")
# With matched B_seq, each arm of these methods gets a single pass per problem whose
# max_tokens is that arm's run's B_seq on the problem (pdr_core.baseline).
MATCHED_METHODS = ("pdr", "sr")
BUDGETS = {"b_seq": "mean B_seq (tokens on the critical path)",
           "b_total": "mean B_total (tokens of all calls)"}
METHOD_COLORS = {"single": "#4C78A8", "vote": "#F58518", "sr": "#B279A2", "pdr": "#54A24B"}
_EVAL_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

TABLES = (
    """CREATE TABLE IF NOT EXISTS eval_evaluations (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        spec TEXT NOT NULL,
        dataset_hash TEXT NOT NULL,
        problems TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS eval_attempts (
        eval_id TEXT NOT NULL REFERENCES eval_evaluations (id) ON DELETE CASCADE,
        run_id TEXT NOT NULL,
        problem_id TEXT NOT NULL,
        method TEXT NOT NULL,
        width INTEGER NOT NULL,
        depth INTEGER NOT NULL,
        max_tokens INTEGER NOT NULL,
        started_at TEXT NOT NULL,
        oracle INTEGER,
        decided_by TEXT,
        PRIMARY KEY (eval_id, run_id)
    )""",
)

CellKey = tuple[str, str, int, int, int]


@dataclass(frozen=True)
class EvalProgress:
    """Where an evaluation stands: runs done of total (those completed before this session
    included), runs failed and tokens spent (B_total) in this session, seconds left (None
    until a run has finished here)."""

    done: int
    total: int
    eta: float | None = None
    failed: int = 0
    tokens: int = 0


Progress = Callable[[EvalProgress], None]


class EvalError(ValueError):
    """An evaluation that cannot be created, resumed or read; the message says why."""


# --- what an evaluation is ------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One arm of the sweep: a method with the width, depth and max_tokens it uses."""

    method: str
    width: int
    depth: int
    max_tokens: int
    # A matched single pass: the method of the arm whose B_seq it matches (width, depth and
    # max_tokens are that arm's); "" for an ordinary arm.
    matched: str = ""

    @property
    def source(self) -> Setting:
        """The arm a matched single pass matches (itself for an ordinary arm)."""
        if not self.matched:
            return self
        return Setting(self.matched, self.width, self.depth, self.max_tokens)

    @property
    def label(self) -> str:
        """`pdr w4 d2 t512`, naming only what the method uses; a matched single pass is
        `single @ B_seq of pdr w4 d2 t512`."""
        if self.matched:
            return f"single @ B_seq of {self.source.label}"
        parts = [self.method]
        method = get_method(self.method)
        if method.uses("width"):
            parts.append(f"w{self.width}")
        if method.uses("depth"):
            parts.append(f"d{self.depth}")
        parts.append(f"t{self.max_tokens}")
        return " ".join(parts)


def _unique(values: Iterable[Any], name: str) -> tuple[Any, ...]:
    out = tuple(dict.fromkeys(values))
    if not out:
        raise ConfigError(name, [], "at least one value")
    return out


@dataclass(frozen=True)
class EvalSpec:
    """The sweep: methods x widths x depths x max_tokens, and the settings every run
    shares. Values a method ignores collapse, so `single` runs once per max_tokens, and
    `k` is capped at each arm's width."""

    dataset: str
    methods: tuple[str, ...] = DEFAULT_METHODS
    widths: tuple[int, ...] = (4,)
    depths: tuple[int, ...] = (2,)
    max_tokens: tuple[int, ...] = (1024,)
    distill: str = "summary"
    k: int = 2
    workspace_tokens: int = 512
    temperature: float = 0.8
    seed: int = 0
    run_concurrency: int = 8
    model: str = ""
    base_url: str = ""
    name: str = ""
    # Adaptive compute for the methods that take it (pdr, sr, rsa); None: never stop early.
    stop_when_agree: float | None = None
    # Code problems: whether their programs run (a person switched it on); else ungraded.
    execute_code: bool = False
    # A single pass at each pdr/sr arm's B_seq, per problem (MATCHED_METHODS).
    matched_bseq: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "methods", _unique(self.methods, "methods"))
        object.__setattr__(self, "widths", _unique(self.widths, "width"))
        object.__setattr__(self, "depths", _unique(self.depths, "depth"))
        object.__setattr__(self, "max_tokens", _unique(self.max_tokens, "max_tokens"))
        for method in self.methods:
            try:
                get_method(method)
            except ConfigError as exc:
                raise ConfigError("methods", method, f"each {exc.allowed}") from None
        for setting in self.settings():
            self.config(setting)  # raises ConfigError naming the bad value

    def settings(self) -> list[Setting]:
        """Every distinct arm, in method order."""
        arms: dict[Setting, None] = {}
        for method in self.methods:
            declared = get_method(method)
            widths = self.widths if declared.uses("width") else (1,)
            depths = self.depths if declared.uses("depth") else (1,)
            for width in widths:
                for depth in depths:
                    for max_tokens in self.max_tokens:
                        arms[Setting(method, width, depth, max_tokens)] = None
        if self.matched_bseq:
            for arm in list(arms):
                if arm.method in MATCHED_METHODS:
                    arms[Setting("single", arm.width, arm.depth, arm.max_tokens,
                                 arm.method)] = None
        return list(arms)

    def config(self, setting: Setting) -> RunConfig:
        """The arm's configuration; a matched single pass's max_tokens is set per problem
        when it runs (`matched_config`), here it is the arm's per-call budget."""
        return get_method(setting.method).prepare(RunConfig(
            method=setting.method, width=setting.width, depth=setting.depth,
            max_tokens=setting.max_tokens, distill=self.distill, k=self._k(setting),
            workspace_tokens=self.workspace_tokens, temperature=self.temperature,
            seed=self.seed, concurrency=self.run_concurrency, model=self.model,
            base_url=self.base_url,
            stop_when_agree=(self.stop_when_agree if get_method(setting.method).adaptive
                             else None),
        ))

    def _k(self, setting: Setting) -> int:
        # k cannot exceed the narrowest round it selects from (the width, 1 for sr): a grid
        # with widths 2 and 8 and k 4 still runs, with k capped to 2 on the narrow arm.
        selects = setting.method == "sr" or get_method(setting.method).uses("k")
        return min(self.k, setting.width) if selects else self.k

    def to_dict(self) -> dict[str, Any]:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalSpec:
        known = {f.name for f in fields(cls)}
        kwargs = {k: tuple(v) if isinstance(v, list) else v
                  for k, v in data.items() if k in known}
        return cls(**kwargs)

    def identity(self) -> dict[str, Any]:
        """What must match for a run of the same id to resume it (not the name, nor how
        many calls a run may have in flight)."""
        data = self.to_dict()
        data.pop("name")
        data.pop("run_concurrency")
        return data


@dataclass
class Evaluation:
    """A stored evaluation: its id, spec and problems."""

    id: str
    spec: EvalSpec
    problems: list[Problem]
    created_at: str
    dataset_hash: str

    @property
    def name(self) -> str:
        return self.spec.name or self.id

    @property
    def tag(self) -> str:
        return f"{EVAL_TAG_PREFIX}{self.id}"

    def cells(self) -> list[tuple[Problem, Setting]]:
        """Every (problem, arm) pair, arm by arm."""
        return [(p, s) for s in self.spec.settings() for p in self.problems]


def _key(problem_id: str, setting: Setting) -> CellKey:
    method = f"{setting.method}@{setting.matched}" if setting.matched else setting.method
    return (problem_id, method, setting.width, setting.depth, setting.max_tokens)


def _source_run(store: Store, evaluation: Evaluation, problem: Problem, setting: Setting
                ) -> Trace | None:
    """The completed run of the arm a matched single pass matches, on `problem`; None
    while there is none."""
    attempt = _latest_attempts(store, evaluation.id).get(_key(problem.id, setting.source))
    if attempt is None:
        return None
    summary = _runs(store, evaluation).get(attempt.run_id)
    if summary is None or summary.status != "completed":
        return None
    return store.get_trace(attempt.run_id)


def new_eval_id() -> str:
    return uuid.uuid4().hex[:10]


def ensure_tables(store: Store) -> None:
    """Create the evaluation tables in the run store's file, if they are not there."""
    with closing(store.connect()) as conn:
        for statement in TABLES:
            conn.execute(statement)


def create_evaluation(store: Store, spec: EvalSpec, problems: Sequence[Problem],
                      eval_id: str | None = None) -> Evaluation:
    """Record a new evaluation, or return the stored one with this id when it is the same
    evaluation (same problems, methods, grid, model); raises EvalError when it differs."""
    if not problems:
        raise EvalError("the dataset has no problems")
    store.check_writable()
    ids = [p.id for p in problems]
    if len(set(ids)) != len(ids):
        raise EvalError("problem ids must be unique within an evaluation")
    eval_id = eval_id or new_eval_id()
    if not _EVAL_ID_RE.match(eval_id):
        raise EvalError(f"evaluation id {eval_id!r}: use letters, digits, '.', '_' or '-' "
                        "(at most 64)")
    ensure_tables(store)
    digest = fingerprint(problems)
    try:
        existing = load_evaluation(store, eval_id)
    except KeyError:
        existing = None
    if existing is not None:
        if existing.dataset_hash != digest:
            raise EvalError(f"evaluation {eval_id} was made on other problems (content hash "
                            f"{existing.dataset_hash}, this dataset {digest}); use a new id")
        old, new = existing.spec.identity(), spec.identity()
        changed = [key for key in new if old.get(key) != new[key] and key != "dataset"]
        if changed:
            detail = ", ".join(f"{k} {old.get(k)!r} -> {new[k]!r}" for k in changed)
            raise EvalError(f"evaluation {eval_id} has other settings ({detail}); resume it "
                            "with the same ones or use a new id")
        return existing
    evaluation = Evaluation(eval_id, spec, list(problems), now_iso(), digest)
    with closing(store.connect()) as conn:
        conn.execute(
            "INSERT INTO eval_evaluations (id, name, created_at, spec, dataset_hash, problems)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (eval_id, spec.name, evaluation.created_at, json.dumps(spec.to_dict()), digest,
             json.dumps([p.to_dict() for p in problems], ensure_ascii=False)),
        )
    return evaluation


def load_evaluation(store: Store, eval_id: str) -> Evaluation:
    """The stored evaluation; KeyError when there is none with this id."""
    ensure_tables(store)
    with closing(store.connect()) as conn:
        row = conn.execute(
            "SELECT spec, problems, created_at, dataset_hash FROM eval_evaluations"
            " WHERE id = ?", (eval_id,),
        ).fetchone()
    if row is None:
        raise KeyError(f"no evaluation {eval_id!r} in {store.path}")
    spec = EvalSpec.from_dict(json.loads(row[0]))
    problems = [Problem.from_dict(p) for p in json.loads(row[1])]
    return Evaluation(eval_id, spec, problems, row[2], row[3])


@dataclass(frozen=True)
class EvalSummary:
    id: str
    name: str
    created_at: str
    dataset: str
    problems: int


def list_evaluations(store: Store) -> list[EvalSummary]:
    """Stored evaluations, newest first."""
    ensure_tables(store)
    with closing(store.connect()) as conn:
        rows = conn.execute(
            "SELECT id, name, created_at, spec, json_array_length(problems)"
            " FROM eval_evaluations ORDER BY created_at DESC"
        ).fetchall()
    return [EvalSummary(r[0], r[1], r[2], json.loads(r[3]).get("dataset", ""), r[4])
            for r in rows]


# --- running --------------------------------------------------------------------------------


@dataclass
class _Attempt:
    run_id: str
    oracle: bool | None
    decided_by: str | None


def _latest_attempts(store: Store, eval_id: str) -> dict[CellKey, _Attempt]:
    with closing(store.connect()) as conn:
        rows = conn.execute(
            "SELECT problem_id, method, width, depth, max_tokens, run_id, oracle, decided_by"
            " FROM eval_attempts WHERE eval_id = ? ORDER BY started_at, rowid", (eval_id,)
        ).fetchall()
    # Later attempts of a cell replace earlier ones: the retry of a failed run wins.
    return {tuple(r[:5]): _Attempt(r[5], None if r[6] is None else bool(r[6]), r[7])
            for r in rows}


def _runs(store: Store, evaluation: Evaluation) -> dict[str, RunSummary]:
    # The text filter matches tags by substring; keep the runs that carry this exact tag.
    return {r.id: r for r in store.list_runs(limit=10**9, text=evaluation.tag)
            if evaluation.tag in r.tags}


def _oracle(trace: Trace) -> bool | None:
    """Whether any generation was right (for code: any program passed every test); None
    without a reference, or with programs that never ran."""
    graded = (trace.reference_answer is not None if trace.task is None
              else bool(trace.task.get("executed")))
    if not graded:
        return None
    return any(n.correct is True for n in trace.nodes
               if n.stage != "distill" and n.status == "ok")


async def _run_cell(store: Store, evaluation: Evaluation, provider: Provider,
                    problem: Problem, setting: Setting, interrupted: str | None = None
                    ) -> Trace:
    """Run a cell; with `interrupted`, the id of its run a stopped process left behind,
    resume that run instead: its finished calls are kept, only the rest is called."""
    if interrupted is not None:
        trace = store.get_trace(interrupted)
        trace = await resume(trace, store.events(interrupted), provider,
                             store.resume_writer(interrupted), evaluation.spec.execute_code)
        _record_grade(store, evaluation, problem, trace)
        return trace
    run_id = new_run_id()
    # The attempt is recorded before the run starts: a process killed at any point leaves
    # the cell linked to a run that is missing (run again) or interrupted (resumed).
    with closing(store.connect()) as conn:
        conn.execute(
            "INSERT INTO eval_attempts (eval_id, run_id, problem_id, method, width, depth,"
            " max_tokens, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (evaluation.id, run_id, *_key(problem.id, setting), now_iso()),
        )
    tags = (evaluation.tag, evaluation.spec.name) if evaluation.spec.name else (evaluation.tag,)
    writer = store.writer(name=f"{evaluation.name} · {problem.id} · {setting.label}", tags=tags)
    task = task_for_problem(problem, evaluation.spec.execute_code)
    config = evaluation.spec.config(setting)
    if setting.matched:  # max_tokens: the B_seq of the arm's run on this problem
        source = _source_run(store, evaluation, problem, setting)
        assert source is not None  # run_evaluation runs a matched cell after its arm's
        config, _ = baseline_config(source)
    trace = await run(problem.question, config, provider, writer,
                      reference=problem.answer if task is None else None, run_id=run_id,
                      task=task)
    _record_grade(store, evaluation, problem, trace)
    return trace


def _record_grade(store: Store, evaluation: Evaluation, problem: Problem, trace: Trace
                  ) -> None:
    """The oracle and the check that decided correctness, on the cell's attempt."""
    run_id = trace.id
    decided = _decided_by(trace.final_answer, problem) if trace.correct else None
    oracle = _oracle(trace)
    with closing(store.connect()) as conn:
        conn.execute(
            "UPDATE eval_attempts SET oracle = ?, decided_by = ? WHERE eval_id = ? AND"
            " run_id = ?",
            (None if oracle is None else int(oracle), decided, evaluation.id, run_id),
        )


def _cell_runs(store: Store, evaluation: Evaluation):
    """Every cell with its latest attempt and that attempt's run (None where none)."""
    attempts = _latest_attempts(store, evaluation.id)
    runs = _runs(store, evaluation)
    for problem, setting in evaluation.cells():
        attempt = attempts.get(_key(problem.id, setting))
        yield problem, setting, attempt, runs.get(attempt.run_id) if attempt else None


def pending_cells(store: Store, evaluation: Evaluation) -> list[tuple[Problem, Setting]]:
    """Cells still to run: never run, or whose latest run failed or was interrupted.

    Raises EvalError when a run of the evaluation is still running in another process.
    """
    return [(problem, setting) for problem, setting, _ in _pending(store, evaluation)]


def _pending(store: Store, evaluation: Evaluation
             ) -> list[tuple[Problem, Setting, str | None]]:
    """`pending_cells`, each with the id of its interrupted run to resume (else None)."""
    todo = []
    for problem, setting, _, summary in _cell_runs(store, evaluation):
        if summary is not None and summary.status == "running":
            raise EvalError(f"evaluation {evaluation.id} is still running in another process "
                            f"(run {summary.id}); wait for it or stop it first")
        if summary is None or summary.status != "completed":
            interrupted = summary.id if summary and summary.status == "interrupted" else None
            todo.append((problem, setting, interrupted))
    return todo


async def run_evaluation(store: Store, evaluation: Evaluation, provider: Provider,
                         concurrency: int = 4,
                         progress: Progress | None = None) -> list[ResultRow]:
    """Run every cell not completed yet, at most `concurrency` runs at once, in this
    event loop; returns the results. `progress(EvalProgress)` is called at the start and
    after every run."""
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise EvalError(f"concurrency {concurrency!r}: a whole number of runs, at least 1")
    store.check_writable()
    recorded = evaluation.spec.model
    if recorded and provider.model != recorded:
        raise EvalError(f"evaluation {evaluation.id} was made with model {recorded!r}; the "
                        f"endpoint now uses {provider.model!r}: pick that model to resume it")
    todo = _pending(store, evaluation)
    total = len(evaluation.cells())
    done = total - len(todo)
    finished_here = failed = tokens = 0
    started = time.monotonic()
    limit = asyncio.Semaphore(concurrency)

    def report() -> None:
        if progress is None:
            return
        eta = None
        if done == total:
            eta = 0.0
        elif finished_here:
            eta = (time.monotonic() - started) / finished_here * (total - done)
        progress(EvalProgress(done, total, eta, failed, tokens))

    async def one(problem: Problem, setting: Setting, interrupted: str | None) -> None:
        nonlocal done, finished_here, failed, tokens
        async with limit:
            trace = await _run_cell(store, evaluation, provider, problem, setting,
                                    interrupted)
        done += 1
        finished_here += 1
        failed += trace.status != "completed"
        tokens += trace.budget.b_total
        report()

    report()
    # A TaskGroup cancels the other runs if one raises unexpectedly; each cancelled run is
    # recorded as interrupted and runs again on resume. Matched single passes run after
    # the arms whose B_seq they take; one whose arm's run did not complete stays pending.
    async with asyncio.TaskGroup() as group:
        for problem, setting, interrupted in todo:
            if not setting.matched:
                group.create_task(one(problem, setting, interrupted))
    async with asyncio.TaskGroup() as group:
        for problem, setting, interrupted in todo:
            if setting.matched and _source_run(store, evaluation, problem, setting):
                group.create_task(one(problem, setting, interrupted))
    return collect_results(store, evaluation)


@dataclass
class EvalJob(LoopThread):
    """An evaluation on its own thread and event loop, so a page can rerun while it runs."""

    store: Store
    evaluation: Evaluation
    provider: Provider
    concurrency: int = 4
    done: int = field(default=0, init=False)
    total: int = field(default=0, init=False)
    eta: float | None = field(default=None, init=False)
    failed: int = field(default=0, init=False)
    rows: list[ResultRow] | None = field(default=None, init=False)
    error: BaseException | None = field(default=None, init=False)
    cancelled: bool = field(default=False, init=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, init=False, repr=False)
    _task: asyncio.Task | None = field(default=None, init=False, repr=False)

    def start(self) -> EvalJob:
        self.total = len(self.evaluation.cells())
        self._thread = threading.Thread(target=self._main, daemon=True,
                                        name=f"pdr-eval-{self.evaluation.id}")
        self._thread.start()
        return self

    def _progress(self, state: EvalProgress) -> None:
        self.done, self.total, self.eta, self.failed = (state.done, state.total, state.eta,
                                                        state.failed)

    def _main(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
            self.rows = await run_evaluation(self.store, self.evaluation, self.provider,
                                             self.concurrency, self._progress)

        try:
            asyncio.run(main())
        except asyncio.CancelledError:
            self.cancelled = True  # every run in flight is recorded as interrupted
        except BaseException as exc:  # noqa: BLE001 - kept for the page, re-raised by wait()
            self.error = exc


    def wait(self, timeout: float | None = None) -> list[ResultRow] | None:
        if self._thread is not None:
            self._thread.join(timeout)
        if self.error is not None:
            raise self.error
        return self.rows


# --- results --------------------------------------------------------------------------------


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
    # What stopping on agreement saved (adaptive compute; see pdr_core.adaptive).
    rounds_saved: int = 0
    tokens_saved: int = 0
    matched: str = ""  # see Setting.matched

    @property
    def setting(self) -> Setting:
        return Setting(self.method, self.width, self.depth, self.max_tokens, self.matched)


def _decided_by(final: str | None, problem: Problem) -> str | None:
    """The check that found a right answer right: exact or math, or a program's tests."""
    return "tests" if "tests" in problem.extra else answer_match(final, problem.answer)


def collect_results(store: Store, evaluation: Evaluation) -> list[ResultRow]:
    """One row per cell, from the store: safe to call while the evaluation runs."""
    rows = []
    for problem, setting, attempt, summary in _cell_runs(store, evaluation):
        row = ResultRow(problem.id, setting.method, setting.width, setting.depth,
                        setting.max_tokens, None, None, 0, 0, "", "pending",
                        label=setting.label, reference=problem.answer,
                        matched=setting.matched)
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
                    row.oracle = _oracle(store.get_trace(summary.id))
                if row.correct and row.decided_by is None:
                    row.decided_by = _decided_by(summary.final_answer, problem)
                _record_savings(store, evaluation, row)
        rows.append(row)
    return rows


def _record_savings(store: Store, evaluation: Evaluation, row: ResultRow) -> None:
    """Fill in what an early stop saved; only runs that may have stopped early (an adaptive
    arm that made fewer calls than planned) are read from the store."""
    spec = evaluation.spec
    if spec.stop_when_agree is None or not get_method(row.method).adaptive:
        return
    if row.calls >= spec.config(row.setting).calls:
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
            label=setting.label, correct=right,
            oracle_accuracy=sum(oracle) / len(oracle) if oracle else None,
            failed=sum(1 for r in group if r.status in ("failed", "interrupted")),
            pending=sum(1 for r in group if r.status in ("pending", "running")),
            tokens_saved=sum(r.tokens_saved for r in graded),
            matched=setting.matched,
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


def accuracy_figure(summary: Sequence[SummaryRow], budget: str = "b_seq") -> go.Figure:
    """Accuracy against mean B_seq or B_total, one line per method, 95% Wilson bars."""
    if budget not in BUDGETS:
        raise ValueError(f"budget {budget!r}: one of {', '.join(BUDGETS)}")
    figure = go.Figure()
    lines = list(dict.fromkeys(_line(s) for s in summary))
    for line in lines:
        points = sorted((s for s in summary if _line(s) == line and s.n),
                        key=lambda s: getattr(s, f"mean_{budget}"))
        if not points:
            continue
        method = points[0].method
        figure.add_trace(go.Scatter(
            x=[getattr(s, f"mean_{budget}") for s in points],
            y=[s.accuracy for s in points],
            error_y={"type": "data", "symmetric": False,
                     "array": [s.ci_high - s.accuracy for s in points],
                     "arrayminus": [s.accuracy - s.ci_low for s in points]},
            mode="lines+markers",
            name=line,
            marker={"color": METHOD_COLORS.get(method), "size": 9,
                    "symbol": "diamond" if points[0].matched else "circle"},
            line={"color": METHOD_COLORS.get(method),
                  "dash": "dash" if points[0].matched else "solid"},
            text=[s.label for s in points],
            customdata=[[s.n, s.ci_low, s.ci_high] for s in points],
            hovertemplate="%{text}<br>accuracy %{y:.1%} (95% CI %{customdata[1]:.1%}"
                          "–%{customdata[2]:.1%}, n=%{customdata[0]})<br>"
                          + budget.replace("b_", "B_") + " %{x:,.0f}<extra></extra>",
        ))
    figure.update_layout(
        title=f"Accuracy vs {BUDGETS[budget]}",
        xaxis_title=BUDGETS[budget], yaxis_title="accuracy",
        yaxis={"range": [-0.02, 1.02], "tickformat": ".0%"},
        legend_title="method", margin={"l": 40, "r": 20, "t": 50, "b": 40},
    )
    return figure


def _line(summary: SummaryRow) -> str:
    """The figure's line of an arm: its method, or the matched single passes of a method."""
    return f"single @ {summary.matched} B_seq" if summary.matched else summary.method


# --- export ---------------------------------------------------------------------------------


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, float):
        return round(value, 6)
    return value


def _csv(records: Iterable[dict[str, Any]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for record in records:
        writer.writerow([_cell(record[c]) for c in columns])
    return buffer.getvalue()


def results_csv(rows: Sequence[ResultRow]) -> str:
    """One line per run: RESULT_COLUMNS."""
    return _csv((asdict(r) for r in rows), RESULT_COLUMNS)


def summary_csv(summary: Sequence[SummaryRow]) -> str:
    """One line per method and setting: SUMMARY_COLUMNS."""
    return _csv((asdict(s) for s in summary), SUMMARY_COLUMNS)


def report_json(evaluation: Evaluation, rows: Sequence[ResultRow],
                summary: Sequence[SummaryRow]) -> str:
    """The whole evaluation as one JSON document (format pdr-eval/1)."""
    return json.dumps({
        "format": FORMAT,
        "id": evaluation.id,
        "name": evaluation.spec.name,
        "created_at": evaluation.created_at,
        "spec": evaluation.spec.to_dict(),
        "dataset_hash": evaluation.dataset_hash,
        "problems": len(evaluation.problems),
        "summary": [asdict(s) for s in summary],
        "results": [asdict(r) for r in rows],
    }, indent=2, ensure_ascii=False)


def write_outputs(out_dir: str | Path, evaluation: Evaluation, rows: Sequence[ResultRow],
                  summary: Sequence[SummaryRow]) -> list[Path]:
    """results.csv, summary.csv and evaluation.json in `out_dir`; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "results.csv": results_csv(rows),
        "summary.csv": summary_csv(summary),
        "evaluation.json": report_json(evaluation, rows, summary),
    }
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    return [out / name for name in files]


def summary_header(metric: str = "accuracy") -> tuple[str, ...]:
    """The titles of `summary_cells`; `metric` names the accuracy column (pass@1 for code)."""
    return ("arm", "n", metric, "95% CI", "mean B_seq", "mean B_total", "oracle", "failed")


def summary_cells(s: SummaryRow) -> tuple[str, ...]:
    """One arm's summary as text: shares as percentages (one decimal), means rounded."""
    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.1%}"

    ci = "-" if s.ci_low is None else f"{s.ci_low:.1%}-{s.ci_high:.1%}"
    return (s.label, str(s.n), pct(s.accuracy), ci,
            "-" if s.mean_b_seq is None else f"{s.mean_b_seq:,.0f}",
            "-" if s.mean_b_total is None else f"{s.mean_b_total:,.0f}",
            pct(s.oracle_accuracy), str(s.failed))


def summary_text(summary: Sequence[SummaryRow], metric: str = "accuracy") -> str:
    """The summary as an aligned plain-text table (the command line prints it)."""
    header = summary_header(metric)
    lines = [header, *(summary_cells(s) for s in summary)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True))
                     .rstrip() for line in lines)


# --- before running -------------------------------------------------------------------------


@dataclass(frozen=True)
class ArmEstimate:
    label: str
    runs: int
    calls: int
    worst_b_seq: int  # of the longest question
    worst_b_total: int  # summed over the arm's runs
    cost_usd: float | None


def estimate(spec: EvalSpec, problems: Sequence[Problem],
             price: tuple[float, float] | None = None) -> list[ArmEstimate]:
    """Worst-case budget of every arm: `preview` of its config on each problem."""
    arms = []
    for setting in spec.settings():
        config = spec.config(setting)
        if setting.matched:  # a single pass at most the arm's worst B_seq on each problem
            source = spec.config(setting.source)
            previews = [preview(replace(config, max_tokens=preview(source, p.question)
                                        .worst_b_seq), p.question, price) for p in problems]
        else:
            previews = [preview(config, p.question, price) for p in problems]
        costs = [p.cost_usd for p in previews]
        arms.append(ArmEstimate(
            setting.label, len(previews), sum(p.calls for p in previews),
            max((p.worst_b_seq for p in previews), default=0),
            sum(p.worst_b_total for p in previews),
            None if price is None else sum(c or 0.0 for c in costs),
        ))
    return arms


def parse_int_list(text: str, name: str) -> tuple[int, ...]:
    """'4,8' -> (4, 8); raises ConfigError naming the option otherwise."""
    try:
        values = tuple(int(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        raise ConfigError(name, text, "comma-separated whole numbers, e.g. 4,8") from None
    if not values:
        raise ConfigError(name, text, "at least one whole number")
    return values


def parse_methods(text: str) -> tuple[str, ...]:
    """'single,pdr' -> ('single', 'pdr'); raises ConfigError on an unknown method."""
    methods = tuple(part for part in text.replace(" ", "").split(",") if part)
    for method in methods or ("",):
        try:
            get_method(method)
        except ConfigError as exc:
            raise ConfigError("methods", text, f"comma-separated, each {exc.allowed}"
                              ) from None
    return methods


def method_order() -> tuple[str, ...]:
    """Every registered method in the order evaluations list them: the baselines and PDR,
    then the other built-ins, then the installed plugins'."""
    return DEFAULT_METHODS + tuple(m for m in method_registry() if m not in DEFAULT_METHODS)
