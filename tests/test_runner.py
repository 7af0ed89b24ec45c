import asyncio
import time

from conftest import QUESTION

from pdr_core.config import RunConfig
from pdr_core.events import RunStarted
from pdr_core.fold import trace_to_events
from pdr_core.run.jobs import JobRegistry, RunJob
from pdr_core.run.methods import run
from pdr_core.testing import FakeProvider


def test_job_runs_off_thread_and_writes_to_the_store(store):
    job = RunJob(store, QUESTION, RunConfig(method="pdr", width=3, depth=2),
                 FakeProvider(delay=0.05), reference="52").start()
    assert job.running
    trace = job.wait(timeout=30)
    assert not job.running
    assert trace.status == "completed" and trace.final_answer == "52"
    assert store.get_trace(job.run_id).to_dict() == trace.to_dict()


def test_cancel_marks_interrupted_and_keeps_finished_nodes(store):
    job = RunJob(store, QUESTION, RunConfig(method="pdr", width=2, depth=4),
                 FakeProvider(delay=0.2)).start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        runs = store.list_runs()
        if runs and runs[0].calls >= 2:
            break
        time.sleep(0.01)
    job.cancel()
    job.wait(timeout=20)
    assert not job.running
    stored = store.get_trace(job.run_id)
    assert stored.status == "interrupted"
    assert sum(n.status == "ok" for n in stored.nodes) >= 2


def test_the_registry_finds_a_job_while_it_runs_and_keeps_the_last_finished(store):
    registry = JobRegistry(keep_finished=1)
    slow = registry.start(RunJob(store, QUESTION, RunConfig(method="vote", width=2),
                                 FakeProvider(delay=0.5)))
    assert registry.get(slow.run_id) is slow and registry.running() == [slow]
    quick = []
    for _ in range(4):
        job = registry.start(RunJob(store, QUESTION, RunConfig(method="single"),
                                    FakeProvider()))
        job.wait(timeout=20)
        quick.append(job)
    # the running job stays; of the finished ones, only the newest
    assert registry.get(slow.run_id) is slow
    assert [registry.get(j.run_id) for j in quick] == [None, None, quick[2], quick[3]]
    slow.wait(timeout=20)
    assert registry.running() == []


def _count_gradings(monkeypatch) -> list:
    """Each grading of an answer against the reference, as the fold makes it."""
    import pdr_core.fold as fold_module

    graded = []
    grade = fold_module.is_correct

    def counted(answer, reference):
        graded.append(answer)
        return grade(answer, reference)

    monkeypatch.setattr(fold_module, "is_correct", counted)
    return graded


def _answers(trace) -> int:
    from pdr_core.trace import gives_answer

    return sum(gives_answer(n.stage) and n.status == "ok" for n in trace.nodes)


def test_a_stored_run_grades_each_answer_once(store, monkeypatch):
    # The store's writer and the engine share one fold: each node's answer is graded once,
    # and the final answer once, not once per fold.
    graded = _count_gradings(monkeypatch)
    job = RunJob(store, QUESTION, RunConfig(method="pdr", width=3, depth=2),
                 FakeProvider(), reference="52").start()
    trace = job.wait(timeout=30)
    assert trace.status == "completed" and trace.correct is True
    assert len(graded) == _answers(trace) + 1 == 5
    assert store.get_trace(job.run_id).to_dict() == trace.to_dict()


def test_a_resumed_run_folds_its_stored_events_once(store, monkeypatch):
    from pdr_core.fold import fold

    complete = asyncio.run(run(QUESTION, RunConfig(method="pdr", width=3, depth=3),
                               FakeProvider(), reference="52"))
    # The run as a process stopped in round 2 left it: round 1 and its distill finished.
    events = [e for e in trace_to_events(complete)
              if getattr(e, "node_id", "").startswith(("r1", "d1"))
              or isinstance(e, RunStarted)]
    interrupted = fold(events)
    interrupted.status = "interrupted"
    run_id = store.import_trace(interrupted)
    stored = store.get_trace(run_id)
    graded = _count_gradings(monkeypatch)
    fold(store.events(run_id))
    stored_gradings = len(graded)  # the stored answers and the interrupted end's
    graded.clear()
    trace = RunJob.resuming(store, stored, FakeProvider()).start().wait(timeout=30)
    assert trace.status == "completed" and trace.final_answer == "52"
    # the stored events folded once, each new answer graded once, the final answer once
    new_answers = _answers(trace) - _answers(stored)
    assert new_answers > 0
    assert len(graded) == stored_gradings + new_answers + 1
    assert store.get_trace(run_id).to_dict() == trace.to_dict()
