"""Running an evaluation: every pending cell as a stored run, through one event loop with
a bounded number in flight, here or on a thread of its own (EvalJob)."""

from __future__ import annotations

import asyncio
import threading
import time
from contextlib import closing
from dataclasses import dataclass, field

from pdr_core.evals.problems import Problem
from pdr_core.evals.records import (
    cell_runs,
    source_run,
)
from pdr_core.evals.results import ResultRow, collect_results, decided_by, oracle_of
from pdr_core.evals.spec import (
    RUNS_AT_ONCE,
    EvalError,
    EvalProgress,
    Evaluation,
    Progress,
    Setting,
    cell_key,
)
from pdr_core.events import now_iso
from pdr_core.providers.base import Provider, settle
from pdr_core.run.baseline import baseline_config
from pdr_core.run.jobs import LoopThread
from pdr_core.run.methods import new_run_id, resume, run
from pdr_core.store import Store
from pdr_core.tasks import task_for_problem
from pdr_core.trace import Trace


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
            (evaluation.id, run_id, *cell_key(problem.id, setting), now_iso()),
        )
    tags = (evaluation.tag, evaluation.spec.name) if evaluation.spec.name else (evaluation.tag,)
    writer = store.writer(name=f"{evaluation.name} · {problem.id} · {setting.label}", tags=tags)
    task = task_for_problem(problem, evaluation.spec.execute_code)
    config = evaluation.spec.config(setting)
    if setting.matched:  # max_tokens: the B_seq of the arm's run on this problem
        source = source_run(store, evaluation, problem, setting)
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
    decided = decided_by(trace.final_answer, problem) if trace.correct else None
    oracle = oracle_of(trace)
    with closing(store.connect()) as conn:
        conn.execute(
            "UPDATE eval_attempts SET oracle = ?, decided_by = ? WHERE eval_id = ? AND"
            " run_id = ?",
            (None if oracle is None else int(oracle), decided, evaluation.id, run_id),
        )


def pending_cells(store: Store, evaluation: Evaluation) -> list[tuple[Problem, Setting]]:
    """Cells still to run: never run, or whose latest run failed or was interrupted.

    Raises EvalError when a run of the evaluation is still running in another process.
    """
    return [(problem, setting) for problem, setting, _ in _pending(store, evaluation)]


def _pending(store: Store, evaluation: Evaluation
             ) -> list[tuple[Problem, Setting, str | None]]:
    """`pending_cells`, each with the id of its interrupted run to resume (else None)."""
    todo = []
    for problem, setting, _, summary in cell_runs(store, evaluation):
        if summary is not None and summary.status == "running":
            raise EvalError(f"evaluation {evaluation.id} is still running in another process "
                            f"(run {summary.id}); wait for it or stop it first")
        if summary is None or summary.status != "completed":
            interrupted = summary.id if summary and summary.status == "interrupted" else None
            todo.append((problem, setting, interrupted))
    return todo


async def run_evaluation(store: Store, evaluation: Evaluation, provider: Provider,
                         concurrency: int = RUNS_AT_ONCE,
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
            if setting.matched and source_run(store, evaluation, problem, setting):
                group.create_task(one(problem, setting, interrupted))
    await settle(provider)  # what it learnt about the endpoint is kept for the next process
    return collect_results(store, evaluation)


@dataclass
class EvalJob(LoopThread):
    """An evaluation on its own thread and event loop, so a page can rerun while it runs."""

    store: Store
    evaluation: Evaluation
    provider: Provider
    concurrency: int = RUNS_AT_ONCE
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
