"""RunWriter: the event sink that persists one run as its events arrive.

Streamed deltas are not kept as events (they would multiply the writes by the number of
chunks); the text of each node still in flight is kept, throttled, in `partials`.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from pdr_core.events import (
    Event,
    NodeDelta,
    NodeFailed,
    NodeFinished,
    RunFinished,
    RunResumed,
    RunStarted,
    event_to_dict,
    now_iso,
)
from pdr_core.fold import TraceBuilder
from pdr_core.store.errors import StoreError
from pdr_core.store.runs import process_start
from pdr_core.store.sql import Statement, immediate, tag_text

if TYPE_CHECKING:
    from pdr_core.store.core import Store

# How often the text of in-flight nodes is written while it streams.
PARTIAL_FLUSH_SECONDS = 0.25


class RunWriter:
    """Event sink persisting one run as its events arrive; it folds them (`fold`) for its
    summary row, and lends that fold to the engine (a pdr_core.fold.FoldingSink).

    On an event loop, the writes of all the runs on that loop share one connection and are
    committed in groups (`GroupCommit`); a run's last event is committed before the sink
    returns. Outside an event loop, each event is its own transaction.
    """

    def __init__(self, store: Store, imported: bool = False, name: str | None = None,
                 tags: tuple[str, ...] = (), existing: str | None = None):
        self.store = store
        self.imported = imported
        self.name = name
        self.tags = tag_text(tags)
        self._conn: sqlite3.Connection | None = None  # for writes made outside a loop
        self.fold = TraceBuilder()
        self._seq = 0
        if existing is not None:
            for event in store.events(existing):
                self.fold.apply(event)
                self._seq += 1
        self._dirty: set[str] = set()  # nodes that streamed since their text was last written
        self._partial_rows: set[str] = set()  # nodes with a row in partials
        self._last_flush = 0.0
        self._summary_due = False
        self._in_batch = False
        # Set when a grouped commit of this run's writes failed; raised at the next event.
        self.failed: sqlite3.Error | None = None

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Write every event inside one transaction (imports): all or nothing. The run's
        summary row is written once, at the end: per node it made imports quadratic."""
        self._in_batch = True
        conn = self._connection()
        try:
            with immediate(conn):
                yield
                for sql, params in self.take_summary():
                    conn.execute(sql, params)
        finally:
            self._in_batch = False
            self._close()

    def __call__(self, event: Event) -> None:
        self._raise_failed()
        self.fold.apply(event)
        if isinstance(event, NodeDelta):
            self._dirty.add(event.node_id)
            if not self._in_batch and time.monotonic() - self._last_flush >= PARTIAL_FLUSH_SECONDS:
                self._write(self._partials())
                self._last_flush = time.monotonic()
            return
        statements = self._statements(event)
        if isinstance(event, (NodeFinished, NodeFailed, RunFinished)):
            self._summary_due = True
        # A run is listed as soon as it starts, and whole on disk as soon as it ends.
        self._write(statements, now=isinstance(event, (RunStarted, RunResumed, RunFinished)))
        if isinstance(event, RunFinished) and not self._in_batch:
            self._close()

    def _statements(self, event: Event) -> list[Statement]:
        """The writes that record `event` (the run's summary row apart: `take_summary`)."""
        trace = self.fold.trace
        assert trace is not None
        statements: list[Statement] = []
        if isinstance(event, RunStarted):
            statements.append(self._insert_run(event))
        elif isinstance(event, RunResumed):
            pid = os.getpid()
            statements.append((
                "UPDATE runs SET status = 'running', owner_host = ?, owner_pid = ?,"
                " owner_started = ?, updated_at = ? WHERE id = ?",
                (socket.gethostname(), pid, process_start(pid), now_iso(), event.run_id),
            ))
        self._seq += 1
        statements.append((
            "INSERT INTO events (run_id, seq, payload) VALUES (?, ?, ?)",
            (trace.id, self._seq, json.dumps(event_to_dict(event), ensure_ascii=False)),
        ))
        if isinstance(event, (NodeFinished, NodeFailed)):
            self._dirty.discard(event.node_id)
            if event.node_id in self._partial_rows:
                self._partial_rows.discard(event.node_id)
                statements.append(("DELETE FROM partials WHERE run_id = ? AND node_id = ?",
                                   (trace.id, event.node_id)))
        if isinstance(event, RunFinished):
            # Rows a previous process left behind (a resumed run) go too.
            self._partial_rows.clear()
            statements.append(("DELETE FROM partials WHERE run_id = ?", (trace.id,)))
        return statements

    def take_summary(self) -> list[Statement]:
        """The update of the run's row in the run list, if a node finished since the last."""
        if not self._summary_due:
            return []
        self._summary_due = False
        trace = self.fold.trace
        assert trace is not None
        done = trace.outcome
        return [(
            "UPDATE runs SET updated_at = ?, status = ?, final_answer = ?, correct = ?,"
            " b_seq = ?, b_total = ?, calls = ?, error = ?, stop_reason = ? WHERE id = ?",
            (now_iso(), done.status, done.final_answer,
             None if done.correct is None else int(done.correct), done.b_seq,
             done.b_total, done.calls, trace.error, trace.stop_reason, trace.id),
        )]

    def _write(self, statements: list[Statement], now: bool = False) -> None:
        if not statements:
            return
        if self._in_batch:
            for sql, params in statements:
                self._conn.execute(sql, params)
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no event loop: this event is its own transaction
            try:
                with immediate(self._connection()) as conn:
                    for sql, params in statements + self.take_summary():
                        conn.execute(sql, params)
            except sqlite3.IntegrityError:
                raise
            except sqlite3.DatabaseError as exc:
                raise self.store._failure(exc) from None
            return
        group = self.store._group_commit()
        group.add(self, statements)
        if now:
            group.flush()
            self._raise_failed()

    def _raise_failed(self) -> None:
        if self.failed is not None:
            if isinstance(self.failed, sqlite3.DatabaseError) and not isinstance(
                    self.failed, sqlite3.IntegrityError):
                raise self.store._failure(self.failed) from None
            raise StoreError(
                f"could not write run events to {self.store.path}: {self.failed}"
            ) from self.failed

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self.store.connect()
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _insert_run(self, event: RunStarted) -> Statement:
        config = event.config
        pid = os.getpid()
        return (
            "INSERT INTO runs (id, created_at, updated_at, question, reference_answer, method,"
            " model, config, status, imported, owner_host, owner_pid, owner_started, name, tags,"
            " parent_run_id, parent_node_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?)",
            (event.run_id, event.created_at, now_iso(), event.question, event.reference_answer,
             config.get("method", ""), config.get("model", "") or "", json.dumps(config),
             int(self.imported), socket.gethostname(), pid, process_start(pid), self.name,
             self.tags, event.parent_run_id, event.parent_node_id),
        )

    def _partials(self) -> list[Statement]:
        """The text so far of the nodes that streamed since the last time."""
        trace = self.fold.trace
        if trace is None or not self._dirty:
            return []
        statements = [
            ("INSERT OR REPLACE INTO partials (run_id, node_id, text) VALUES (?, ?, ?)",
             (trace.id, node_id, self.fold.partial.get(node_id, "")))
            for node_id in self._dirty
        ]
        self._partial_rows.update(self._dirty)
        self._dirty.clear()
        return statements
