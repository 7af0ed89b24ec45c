"""The SQLite run store: real files, a real killed process."""

import asyncio
import gc
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import QUESTION, run_fake, wait_for_calls

from pdr_core.config import RunConfig
from pdr_core.events import NodeStarted, RunStarted
from pdr_core.run.methods import run
from pdr_core.store import (
    GROUP_COMMIT_SECONDS,
    SCHEMA_VERSION,
    RunNotFound,
    Store,
    StoreError,
    default_db_path,
)
from pdr_core.testing import FakeProvider
from pdr_core.trace import TraceError
from pdr_core.trace_import import trace_from_json

ROOT = Path(__file__).resolve().parent.parent


def test_events_are_written_as_they_arrive(store):
    seen_during_run = []
    writer = store.writer()

    def sink(event):
        writer(event)
        if type(event).__name__ == "NodeFinished" and event.node_id == "r1-draft-1":
            # Committed within GROUP_COMMIT_SECONDS, while the run goes on.
            asyncio.get_running_loop().call_later(
                2 * GROUP_COMMIT_SECONDS,
                lambda: seen_during_run.append(store.get_trace(event.run_id)))

    # Calls slow enough that the run is still going when the check runs.
    trace = run_fake(RunConfig(method="pdr", width=2, depth=2),
                     FakeProvider(delay=10 * GROUP_COMMIT_SECONDS), sink=sink)
    [mid] = seen_during_run
    assert mid.status == "running"
    assert mid.node("r1-draft-0").status == "ok"
    stored = store.get_trace(trace.id)
    assert stored.to_dict() == trace.to_dict()


def test_many_runs_on_one_loop_are_committed_together_and_each_stored_whole(store):
    config = RunConfig(method="pdr", width=3, depth=2)

    async def many():
        return await asyncio.gather(*(
            run(f"What is {i} + 1?", config, FakeProvider(delay=0.01), store.writer(),
                reference=str(i + 1)) for i in range(30)))

    traces = asyncio.run(many())
    assert {r.id for r in store.list_runs()} == {t.id for t in traces}
    for trace in traces:
        assert trace.status == "completed"
        assert store.get_trace(trace.id).to_dict() == trace.to_dict()


def test_a_run_whose_writes_fail_fails_alone_and_the_runs_it_shared_a_commit_with_are_kept(
    store,
):
    taken = run_fake(RunConfig(method="single"), sink=store.writer())
    config = RunConfig(method="vote", width=2)

    async def three():
        return await asyncio.gather(
            run("What is 1 + 1?", config, FakeProvider(delay=0.01), store.writer()),
            # Its id is taken: its first write breaks the primary key, inside a commit that
            # also holds the first run's pending writes.
            run("What is 2 + 2?", config, FakeProvider(delay=0.01), store.writer(),
                run_id=taken.id),
            run("What is 3 + 3?", config, FakeProvider(delay=0.01), store.writer()),
            return_exceptions=True)

    first, clash, third = asyncio.run(three())
    assert isinstance(clash, StoreError) and "UNIQUE constraint failed" in str(clash)
    for trace in (first, third):
        assert store.get_trace(trace.id).to_dict() == trace.to_dict()
    assert store.get_trace(taken.id).to_dict() == taken.to_dict()


def test_writes_a_run_left_pending_when_its_loop_ended_are_committed(store):
    writer = store.writer()

    async def abandoned() -> None:
        # A run that never gets to its last event: its node start waits for a grouped commit.
        writer(RunStarted("abandoned1", QUESTION, None, RunConfig().to_dict()))
        writer(NodeStarted("abandoned1", "r1-draft-0", "draft", 1, 0, [],
                           [{"role": "user", "content": QUESTION}]))

    asyncio.run(abandoned())
    gc.collect()  # the loop is gone
    trace = store.get_trace("abandoned1")
    assert [(n.id, n.status) for n in trace.nodes] == [("r1-draft-0", "running")]


def test_list_get_delete(store):
    first = run_fake(RunConfig(method="single"), sink=store.writer())
    time.sleep(0.002)
    second = run_fake(RunConfig(method="vote", width=3), sink=store.writer(),
                      question="What is 2 + 2?", reference="4")
    runs = store.list_runs()
    assert [r.id for r in runs] == [second.id, first.id]
    top = runs[0]
    assert (top.method, top.status, top.final_answer, top.correct) == ("vote", "completed",
                                                                      "4", True)
    assert (top.b_seq, top.b_total, top.calls) == (second.budget.b_seq, second.budget.b_total, 3)
    assert [r.id for r in store.list_runs(method="single")] == [first.id]
    assert [r.id for r in store.list_runs(text="2 + 2")] == [second.id]
    assert store.list_runs(status="failed") == []
    assert store.resolve_id(first.id[:6]) == first.id
    store.set_name(first.id, "baseline", ("demo", "aime"))
    named = store.list_runs(method="single")[0]
    assert named.name == "baseline" and named.tags == ("demo", "aime")
    store.delete_run(first.id)
    with pytest.raises(RunNotFound, match=first.id):
        store.get_trace(first.id)
    with pytest.raises(RunNotFound):
        store.delete_run(first.id)
    assert [r.id for r in store.list_runs()] == [second.id]


def test_import_marks_imported_and_refuses_bad_input_writing_nothing(store):
    trace = run_fake(RunConfig(method="pdr", width=2, depth=2), sink=store.writer())
    exported = trace.to_json()
    new_id = store.import_trace(trace_from_json(exported))
    assert new_id != trace.id  # the original id is taken in this store
    imported = store.get_trace(new_id)
    assert imported.to_dict() | {"id": trace.id} == trace.to_dict()
    assert {r.id: r.imported for r in store.list_runs()} == {trace.id: False, new_id: True}
    before = store.list_runs()
    bad = json.loads(exported)
    del bad["nodes"][0]["text"]
    with pytest.raises(TraceError):
        store.import_trace(trace_from_json(json.dumps(bad)))
    assert store.list_runs() == before


def test_schema_version_and_migration(tmp_path):
    path = tmp_path / "runs.sqlite"
    Store(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer than this version"):
        Store(path)


def test_default_path_honours_pdr_db(monkeypatch, tmp_path):
    monkeypatch.setenv("PDR_DB", str(tmp_path / "x.sqlite"))
    assert default_db_path() == tmp_path / "x.sqlite"
    monkeypatch.delenv("PDR_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    if sys.platform.startswith("linux"):
        assert default_db_path() == tmp_path / "data" / "pdr-inspector" / "runs.sqlite"


KILLED_RUN = textwrap.dedent(
    """
    import asyncio, sys
    from pdr_core.config import RunConfig
    from pdr_core.run.methods import run
    from pdr_core.store import Store
    from pdr_core.testing import FakeProvider

    store = Store(sys.argv[1])
    config = RunConfig(method="pdr", width=3, depth=3, concurrency=3)
    asyncio.run(run({question!r}, config, FakeProvider(delay=0.3, chunks=30), store.writer()))
    """
).format(question=QUESTION)


def test_sigkill_mid_run_keeps_finished_nodes_and_reads_interrupted(tmp_path):
    db = tmp_path / "runs.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(db)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        run_id = wait_for_calls(db, 3)
        store = Store(db)
        assert store.get_trace(run_id).status == "running"
    finally:
        proc.kill()
        proc.wait(timeout=10)
    trace = store.get_trace(run_id)
    assert trace.status == "interrupted"
    assert store.list_runs()[0].status == "interrupted"
    finished = [n for n in trace.nodes if n.status == "ok"]
    assert len(finished) >= 3 and all(n.text for n in finished)
    for n in trace.nodes:
        assert n.status in ("ok", "failed")
        if n.status == "failed":
            assert "interrupted" in n.error


def test_partial_text_of_running_nodes_is_readable(store):
    import asyncio

    from pdr_core.run.methods import run

    seen = []

    async def scenario():
        writer = store.writer()
        task = asyncio.create_task(run(QUESTION, RunConfig(method="single"),
                                       FakeProvider(delay=1.0, chunks=10), writer))
        await asyncio.sleep(0.6)
        [summary] = store.list_runs()
        seen.append(store.get_trace(summary.id))
        await task

    asyncio.run(scenario())
    [mid] = seen
    node = mid.nodes[0]
    assert node.status == "running" and node.text
    assert len(node.text) < len(store.get_trace(mid.id).nodes[0].text)


def test_store_file_is_private_and_writer_names_and_tags(tmp_path):
    store = Store(tmp_path / "private.sqlite")
    assert (store.path.stat().st_mode & 0o777) == 0o600
    trace = run_fake(RunConfig(method="single"),
                     sink=store.writer(name="eval 1", tags=("eval:abc", "demo")))
    [summary] = store.list_runs()
    assert (summary.id, summary.name, summary.tags) == (trace.id, "eval 1", ("eval:abc", "demo"))
    assert [r.id for r in store.list_runs(text="eval:abc")] == [trace.id]


def test_prompt_sets_are_versioned(store):
    from pdr_core.prompts import PromptSet

    assert store.prompt_sets() == {}
    first = PromptSet(draft="Think hard.\n{question}")
    assert store.save_prompt_set("careful", first) == 1
    second = PromptSet(draft="Think very hard.\n{question}")
    assert store.save_prompt_set("careful", second) == 2
    assert store.prompt_sets() == {"careful": 2}
    assert store.prompt_set("careful") == second
    assert store.prompt_set("careful", 1) == first
    with pytest.raises(StoreError, match="no prompt set 'loose'"):
        store.prompt_set("loose")
    with pytest.raises(StoreError, match="needs a name"):
        store.save_prompt_set("  ", first)


def test_migrates_a_version_one_store(tmp_path):
    from pdr_core.store import MIGRATIONS

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        for statement in MIGRATIONS[0].split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
    store = Store(path)
    trace = run_fake(RunConfig(method="single"), sink=store.writer())
    assert store.get_trace(trace.id).to_dict() == trace.to_dict()
    assert store.prompt_sets() == {}


# The evaluation tables as versions before schema 5 made them on first use, outside the
# store's migrations (a frozen copy: what old files on disk hold).
OLD_EVAL_TABLES = (
    """CREATE TABLE eval_evaluations (id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL, spec TEXT NOT NULL, dataset_hash TEXT NOT NULL,
        problems TEXT NOT NULL)""",
    """CREATE TABLE eval_attempts (
        eval_id TEXT NOT NULL REFERENCES eval_evaluations (id) ON DELETE CASCADE,
        run_id TEXT NOT NULL, problem_id TEXT NOT NULL, method TEXT NOT NULL,
        width INTEGER NOT NULL, depth INTEGER NOT NULL, max_tokens INTEGER NOT NULL,
        started_at TEXT NOT NULL, oracle INTEGER, decided_by TEXT,
        PRIMARY KEY (eval_id, run_id))""",
)


def version_four_store(path: Path, evaluations: bool) -> None:
    """A store file as schema version 4 left it, with or without evaluation tables."""
    from pdr_core.store import MIGRATIONS

    with sqlite3.connect(path) as conn:
        for migration in MIGRATIONS[:4]:
            for statement in migration.split(";"):
                if statement.strip():
                    conn.execute(statement)
        if evaluations:
            for statement in OLD_EVAL_TABLES:
                conn.execute(statement)
        conn.execute("PRAGMA user_version = 4")
    conn.close()


@pytest.mark.parametrize("evaluations", [False, True])
def test_a_version_four_store_migrates_with_or_without_evaluation_tables(tmp_path,
                                                                         evaluations):
    from pdr_core.evals.datasets import Problem
    from pdr_core.evals.records import create_evaluation, list_evaluations, load_evaluation
    from pdr_core.evals.spec import EvalSpec

    path = tmp_path / "old.sqlite"
    version_four_store(path, evaluations)
    old = Store(path)
    problems = [Problem("p1", "What is 6 * 7?", "42")]
    if evaluations:  # an evaluation made before the upgrade
        with sqlite3.connect(path) as conn:
            conn.execute("INSERT INTO eval_evaluations VALUES (?, '', ?, ?, 'h', ?)",
                         ("before", "2025-01-01T00:00:00", json.dumps({"dataset": "d"}),
                          json.dumps([p.to_dict() for p in problems])))
        conn.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    # The store's own migrations made them, before any evaluation code ran.
    assert {"eval_evaluations", "eval_attempts"} <= tables
    made = create_evaluation(old, EvalSpec("d", methods=("single",)), problems, "after")
    assert load_evaluation(Store(path), "after").spec == made.spec
    expected = {"after", "before"} if evaluations else {"after"}
    assert {e.id for e in list_evaluations(Store(path))} == expected


def test_summaries_reads_the_named_runs_only(store):
    ids = [run_fake(RunConfig(method="single"), sink=store.writer()).id for _ in range(3)]
    found = store.summaries([ids[0], ids[2], "missing"])
    assert set(found) == {ids[0], ids[2]}
    assert found[ids[2]] == next(r for r in store.list_runs() if r.id == ids[2])


def test_runs_of_evaluations_can_be_left_out_of_listings(store):
    def stored(tags):
        return run_fake(RunConfig(method="single"), sink=store.writer(tags=tags)).id

    own = stored(())
    tagged = stored(("evaluation-notes", "mine"))  # a tag that only looks alike is kept
    of_eval = stored(("eval:abc123",))
    named = stored(("aime", "eval:def456"))  # the evaluation's tag after a name tag
    every = {r.id for r in store.list_runs()}
    assert every == {own, tagged, of_eval, named} and store.count_runs() == 4
    assert {r.id for r in store.list_runs(evaluations=False)} == {own, tagged}
    assert store.count_runs(evaluations=False) == 2
    assert store.count_runs(status="interrupted", evaluations=False) == 0
    assert [r.id for r in store.list_runs(text="aime", evaluations=False)] == []


def test_export_import_and_report_keep_the_name_and_tags(store, tmp_path):
    from pdr_core.render.report import render_report

    trace = run_fake(RunConfig(method="pdr", width=2, depth=2), sink=store.writer())
    store.set_name(trace.id, "baseline <b>", ("demo", "aime"))
    exported = store.get_trace(trace.id).to_json()
    assert json.loads(exported)["name"] == "baseline <b>"
    elsewhere = Store(tmp_path / "other.db")
    new_id = elsewhere.import_trace(trace_from_json(exported))
    [row] = elsewhere.list_runs()
    assert (row.id, row.name, row.tags) == (new_id, "baseline <b>", ("demo", "aime"))
    report = render_report(elsewhere.get_trace(new_id))
    assert "baseline &lt;b&gt;" in report and "demo, aime" in report
    bad = json.loads(exported) | {"tags": ["ok", 3]}
    with pytest.raises(TraceError, match="tags"):
        trace_from_json(json.dumps(bad))


def test_a_live_read_folds_only_the_events_written_since(store):
    # A running run polled by the app is folded on from where the last read left it.
    from pdr_core.fold import TraceBuilder, trace_to_events
    from pdr_core.store import LiveFold

    class Counting(TraceBuilder):
        applied = 0

        def apply(self, event):
            self.applied += 1
            super().apply(event)

    events = trace_to_events(run_fake(RunConfig(method="pdr", width=3, depth=2)))
    half = len(events) // 2
    writer = store.writer()
    for event in events[:half]:
        writer(event)
    run_id = events[0].run_id
    live = LiveFold(fold=Counting())
    first = store.get_trace(run_id, live)
    assert first.status == "running" and live.fold.applied == half
    for event in events[half:]:
        writer(event)
    second = store.get_trace(run_id, live)
    assert live.fold.applied == len(events)  # the second read folded the rest only
    assert second.status == "completed"
    assert second.to_dict() == store.get_trace(run_id).to_dict()
