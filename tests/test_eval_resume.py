"""Resuming an evaluation (the same --eval-id) resumes the runs a stopped process left
interrupted: their finished calls are kept and only the rest is called."""

from __future__ import annotations

import asyncio

import pytest

from pdr_core.evals.problems import Problem
from pdr_core.evals.records import create_evaluation
from pdr_core.evals.results import collect_results
from pdr_core.evals.run import pending_cells, run_evaluation
from pdr_core.evals.spec import EvalSpec
from pdr_core.testing import FakeProvider

CALLS_PER_RUN = 2  # sr, depth 2: the draft, then its refinement, one after another


def problems(n: int) -> list[Problem]:
    return [Problem(f"p{i:02d}", f"Q{i:02d}: what is {i} + {i + 7}?", str(2 * i + 7))
            for i in range(n)]


def test_interrupted_runs_are_resumed_keeping_their_finished_calls(store):
    spec = EvalSpec("test:resume", methods=("sr",), depths=(2,), max_tokens=(128,))
    evaluation = create_evaluation(store, spec, problems(6), "resumed")

    async def start_then_cancel() -> None:
        task = asyncio.create_task(run_evaluation(
            store, evaluation, FakeProvider(delay=0.05), concurrency=3))
        while True:
            runs = [store.get_trace(r.run_id) for r in collect_results(store, evaluation)
                    if r.status == "running"]
            if sum(1 for t in runs if any(n.status == "ok" for n in t.nodes)) >= 2:
                break  # at least two runs stopped half-way, with calls already paid for
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(start_then_cancel())
    before = {r.problem_id: r for r in collect_results(store, evaluation)}
    interrupted = {p: r.run_id for p, r in before.items() if r.status == "interrupted"}
    kept = {p: sum(1 for n in store.get_trace(run_id).nodes if n.status == "ok" and n.call)
            for p, run_id in interrupted.items()}
    assert sum(1 for k in kept.values() if k) >= 2
    todo = [p.id for p, _ in pending_cells(store, evaluation)]

    counting = FakeProvider()
    rows = asyncio.run(run_evaluation(store, evaluation, counting, concurrency=3))
    # the calls still to make, not whole runs again
    assert len(counting.calls) == sum(CALLS_PER_RUN - kept.get(p, 0) for p in todo)
    assert [r.status for r in rows] == ["completed"] * 6
    after = {r.problem_id: r for r in rows}
    for problem_id, run_id in interrupted.items():
        assert after[problem_id].run_id == run_id  # the same run, resumed
        trace = store.get_trace(run_id)
        assert trace.status == "completed" and trace.budget.calls == CALLS_PER_RUN
        assert trace.correct is after[problem_id].correct
    for problem_id, row in before.items():
        if row.status == "completed":
            assert after[problem_id].run_id == row.run_id
