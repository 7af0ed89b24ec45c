import time

from conftest import QUESTION

from pdr_core.config import RunConfig
from pdr_core.run.jobs import JobRegistry, RunJob
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
