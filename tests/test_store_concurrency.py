"""The run store shared by processes: one writing runs while another lists, reads, renames,
imports and deletes; files private to their owner; SQL that never runs what it stores."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pdr_core.config import RunConfig
from pdr_core.events import NodeFinished
from pdr_core.run.methods import run
from pdr_core.store import SCHEMA_VERSION, RunNotFound, Store, StoreError
from pdr_core.testing import FakeProvider
from pdr_core.trace import Trace
from pdr_core.trace_import import trace_from_json

ROOT = Path(__file__).resolve().parent.parent
CHILD_RUNS = 8
# A second process: waits for a start time, opens the store, writes runs, reports them.
CHILD = """
import asyncio, json, sys, time
from pdr_core.config import RunConfig
from pdr_core.run.methods import run
from pdr_core.store import Store
from pdr_core.testing import FakeProvider

db, out, count, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
time.sleep(max(0.0, start - time.time()))
store = Store(db)
traces = []
for i in range(count):
    config = RunConfig(method="pdr", width=4, depth=3, concurrency=4)
    trace = asyncio.run(run(f"What is {i} + 1?", config, FakeProvider(delay=0.03, chunks=6),
                            store.writer(name=f"child {i}", tags=("child",))))
    traces.append(trace.to_dict())
with open(out, "w") as handle:
    json.dump(traces, handle)
"""


LABELS = ("name", "tags")  # set on the stored run (set_name, the writer), not by running it


def ran(trace) -> dict:
    """A trace as a dict without the labels a person gives a run."""
    return {k: v for k, v in trace.to_dict().items() if k not in LABELS}


def tables(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    conn.close()
    return sorted(name for (name,) in rows)


def child(db: Path, out: Path, count: int, start: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", CHILD, str(db), str(out), str(count),
                             str(start)], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def prefill(store: Store, count: int) -> list[Trace]:
    return [asyncio.run(run(f"What is {i} * 3?", RunConfig(method="vote", width=2),
                            FakeProvider(), store.writer(name=f"mine {i}")))
            for i in range(count)]


def check_consistent(store: Store, run_id: str, listed_calls: int) -> Trace:
    """A run read while another process writes is whole: every node's parents precede it,
    a finished run has every node finished, and the run list is never ahead of the events."""
    trace = store.get_trace(run_id)
    seen: set[str] = set()
    for node in trace.nodes:
        assert set(node.parent_ids) <= seen, (run_id, node.id)
        seen.add(node.id)
    assert trace.status in ("running", "completed"), (run_id, trace.status, trace.error)
    if trace.status == "completed":
        assert trace.final_answer is not None and all(n.status == "ok" for n in trace.nodes)
    assert listed_calls <= trace.budget.calls
    return trace


def test_two_processes_share_the_store_and_every_run_stays_whole(tmp_path):
    db = tmp_path / "runs.sqlite"
    store = Store(db)
    mine = prefill(store, 6)
    out = tmp_path / "child.json"
    proc = child(db, out, CHILD_RUNS, time.time())
    deleted: set[str] = set()
    renamed: set[str] = set()
    imported: list[str] = []
    reads = in_flight = 0
    try:
        while proc.poll() is None or reads == 0:
            for summary in store.list_runs(limit=1000):
                trace = check_consistent(store, summary.id, summary.calls)
                reads += 1
                in_flight += trace.status == "running"
            # only the other process adds runs meanwhile: a later list never has fewer
            assert store.count_runs() <= len(store.list_runs(limit=1000))
            assert len(store.list_runs(text="child")) <= CHILD_RUNS
            # this process writes too, while the other one does
            for trace in mine:
                if trace.id not in deleted and trace.id not in renamed:
                    store.set_name(trace.id, "renamed", ("mine",))
                    renamed.add(trace.id)
                    break
            for trace in mine[3:]:
                if trace.id not in deleted:
                    store.delete_run(trace.id)
                    deleted.add(trace.id)
                    break
            if len(imported) < 3:
                imported.append(store.import_trace(trace_from_json(mine[0].to_json())))
    finally:
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "locked" not in stderr and reads > 0
    assert in_flight > 0, "no run was read while the other process was writing it"

    children = json.loads(out.read_text())
    assert len(children) == CHILD_RUNS
    for expected in children:
        assert expected["status"] == "completed"
        stored = store.get_trace(expected["id"])
        # the store adds the name and tags the writer was given; the rest is what ran
        assert stored.name.startswith("child ") and stored.tags == ["child"]
        assert ran(stored) == {k: v for k, v in expected.items() if k not in LABELS}
    listed = {r.id: r for r in store.list_runs(limit=1000)}
    assert set(listed) == ({c["id"] for c in children} | {t.id for t in mine} | set(imported)) \
        - deleted
    assert len(deleted) == 3 and len(imported) == 3
    for trace in mine[:3]:
        assert listed[trace.id].name == "renamed" and listed[trace.id].tags == ("mine",)
        assert ran(store.get_trace(trace.id)) == ran(trace)
    for run_id in deleted:
        with pytest.raises(RunNotFound):
            store.get_trace(run_id)
    with sqlite3.connect(db) as conn:
        orphans = conn.execute(
            "SELECT count(*) FROM events WHERE run_id NOT IN (SELECT id FROM runs)").fetchone()
        partials = conn.execute("SELECT count(*) FROM partials").fetchone()
    conn.close()
    assert orphans == (0,) and partials == (0,)


def test_processes_opening_the_store_at_once_all_get_in(tmp_path):
    db = tmp_path / "runs.sqlite"
    Store(db)
    start = time.time() + 1.5  # after every interpreter has started
    procs = [child(db, tmp_path / f"out{i}.json", 1, start) for i in range(3)]
    time.sleep(max(0.0, start - time.time()))
    store = Store(db)
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in results]
    assert len(store.list_runs()) == 3
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    conn.close()
    assert tables(db) == tables(Store(tmp_path / "reference.sqlite").path)


def test_opening_a_store_that_another_process_is_creating_waits_for_it(tmp_path):
    db = tmp_path / "runs.sqlite"
    other = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # the other process, mid-way through creating it
    release = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    release.start()
    try:
        store = Store(db)
    finally:
        release.join()
        other.close()
    assert store.list_runs() == []


# ----- permissions -----------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_store_and_its_side_files_are_private_to_their_owner(tmp_path):
    old = os.umask(0)  # even with a permissive umask
    try:
        db = tmp_path / "deep" / "folder" / "runs.sqlite"
        store = Store(db)
        keep = store.connect()  # an open connection keeps the WAL and shared-memory files
        prefill(store, 1)
        assert _mode(db) == 0o600
        for suffix in ("-wal", "-shm"):
            side = db.with_name(db.name + suffix)
            assert side.exists() and _mode(side) == 0o600, suffix
        keep.close()
    finally:
        os.umask(old)
    # made by the command line, with its own umask
    cli_db = tmp_path / "cli.sqlite"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PDR_"))}
    result = subprocess.run([sys.executable, "-m", "pdr_core", "list", "--db", str(cli_db)],
                            env={**env, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and _mode(cli_db) == 0o600


# ----- SQL injection -------------------------------------------------------------------------

INJECTION = "'); DROP TABLE runs; --"


def test_sql_in_questions_names_tags_and_searches_is_stored_and_found_literally(tmp_path):
    store = Store(tmp_path / "runs.sqlite")
    schema = tables(store.path)
    assert "runs" in schema and "events" in schema
    plain = prefill(store, 3)
    question = f"What is 2 + 2? {INJECTION} 100% of a_b"
    trace = asyncio.run(run(question, RunConfig(method="vote", width=2), FakeProvider(),
                            store.writer(name=INJECTION, tags=(INJECTION, "50%_off")),
                            reference=f"4{INJECTION}"))
    [found] = store.list_runs(text=INJECTION)
    assert found.id == trace.id and found.name == INJECTION
    assert found.question == question
    assert set(found.tags) == {INJECTION.replace(",", " "), "50%_off"}
    # LIKE wildcards in a search are literal characters, not patterns
    assert [r.id for r in store.list_runs(text="%")] == [trace.id]
    assert [r.id for r in store.list_runs(text="a_b")] == [trace.id]
    assert [r.id for r in store.list_runs(text="_")] == [trace.id]
    assert store.list_runs(text="a%b") == []
    store.set_name(trace.id, f"x{INJECTION}", (f"{INJECTION}2",))
    assert store.list_runs(text=f"x{INJECTION}")[0].tags == (f"{INJECTION}2",)
    for call in (store.get_trace, store.delete_run, store.resolve_id):
        with pytest.raises(RunNotFound):
            call(INJECTION)
    with pytest.raises(RunNotFound):
        store.resolve_id("%")
    assert store.get_trace(trace.id).question == question
    assert store.get_trace(trace.id).reference_answer == f"4{INJECTION}"
    assert len(store.list_runs()) == 4 and {t.id for t in plain} < {r.id for r in
                                                                     store.list_runs()}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PDR_"))}
    listed = subprocess.run([sys.executable, "-m", "pdr_core", "list", "--search", INJECTION,
                             "--db", str(store.path)], env={**env, "PYTHONPATH": str(ROOT)},
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and len(listed.stdout.strip().splitlines()) == 1
    assert trace.id in listed.stdout
    assert tables(store.path) == schema


# ----- races with a delete -------------------------------------------------------------------


class _DeletingConnection:
    """A connection that lets another connection delete the run right after the run's row
    was read: the window in which a concurrent delete lands."""

    def __init__(self, real: sqlite3.Connection, store: Store, run_id: str):
        self._real, self._store, self._run_id = real, store, run_id

    def execute(self, sql: str, *args):
        cursor = self._real.execute(sql, *args)
        if "FROM runs WHERE id" in sql and self._run_id:
            rows = cursor.fetchall()
            run_id, self._run_id = self._run_id, ""
            with sqlite3.connect(self._store.path) as other:
                other.execute("PRAGMA foreign_keys=ON")
                other.execute("DELETE FROM runs WHERE id = ?", (run_id,))
            other.close()
            return _Rows(rows)
        return cursor

    def __getattr__(self, name):
        return getattr(self._real, name)


class _Rows:
    def __init__(self, rows):
        self._rows = rows

    def fetchone(self):
        return self._rows[0] if self._rows else None

    def fetchall(self):
        return self._rows


def test_a_run_deleted_while_it_is_read_is_not_found_rather_than_broken(tmp_path):
    store = Store(tmp_path / "runs.sqlite")
    [trace] = prefill(store, 1)

    class Racing(Store):
        def connect(self):
            return _DeletingConnection(super().connect(), self, trace.id)

    racing = Racing(store.path)
    try:
        read = racing.get_trace(trace.id)
    except RunNotFound:
        return
    assert ran(read) == ran(trace)


def test_deleting_a_run_that_is_still_running_neither_crashes_it_nor_corrupts_the_store(
    tmp_path,
):
    store = Store(tmp_path / "runs.sqlite")
    writer = store.writer()
    outcome: list[str] = []

    def sink(event):
        writer(event)
        if isinstance(event, NodeFinished) and not outcome:
            try:
                store.delete_run(event.run_id)
                outcome.append("deleted")
            except StoreError as exc:
                outcome.append(str(exc))

    trace = asyncio.run(run("What is 1 + 1?", RunConfig(method="pdr", width=2, depth=2),
                            FakeProvider(), sink))
    assert trace.status == "completed"
    if outcome == ["deleted"]:
        assert store.list_runs() == []
    else:
        assert "running" in outcome[0]
        assert ran(store.get_trace(trace.id)) == ran(trace)
