"""The writes of every run on one event loop, committed together every few milliseconds."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from contextlib import closing
from typing import TYPE_CHECKING

from pdr_core.store.errors import StoreError
from pdr_core.store.sql import Statement, immediate

if TYPE_CHECKING:
    from pdr_core.store.file import StoreFile
    from pdr_core.store.writer import RunWriter

# How long the events of runs on an event loop wait to be committed together (GroupCommit).
GROUP_COMMIT_SECONDS = 0.02
# Grouped commits between two checkpoints of the write-ahead log (about 15 pages a commit).
CHECKPOINT_EVERY = 100


class GroupCommit:
    """The writes of every run on one event loop, committed together every few milliseconds.

    An evaluation runs hundreds of runs at once. With a connection and a transaction per run
    event, each commit found its page cache stale (another run had written since) and the
    store took 7-8 % of the wall time (BENCHMARKS.md). One connection, and one transaction for
    whatever all the runs wrote in the last GROUP_COMMIT_SECONDS, cost a fraction of that. A
    run's last event is committed at once (`RunWriter`), so a finished run is always whole on
    disk; a process killed mid-run loses at most its last GROUP_COMMIT_SECONDS of events,
    which resuming it calls again.
    """

    def __init__(self, store: StoreFile):
        self._store = store
        self._conn: sqlite3.Connection | None = None
        # Per run (in the order they wrote), the statements waiting for the next commit.
        self._pending: dict[RunWriter, list[Statement]] = {}
        # A flush is due on the loop's timer. (Not the TimerHandle itself: it holds the loop,
        # and the loop must be free to go, taking this with it, when it ends.)
        self._scheduled = False
        self._commits = 0
        self._checkpointer: threading.Thread | None = None

    def add(self, writer: RunWriter, statements: list[Statement]) -> None:
        waiting = self._pending.get(writer)
        if waiting is None:
            self._pending[writer] = statements
        else:
            waiting.extend(statements)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_later(GROUP_COMMIT_SECONDS, self._on_timer)

    def _on_timer(self) -> None:
        self._scheduled = False
        self.flush()

    def flush(self) -> None:
        """Commit every pending write now. A run whose writes failed is told so, and says so at
        its next event (a timer callback cannot raise into the run)."""
        pending, self._pending = self._pending, {}
        if not pending:
            return
        # A run's summary row once per commit, however many of its nodes finished meanwhile.
        groups = [(writer, statements + writer.take_summary())
                  for writer, statements in pending.items()]
        if self._conn is None:
            self._conn = self._store.connect()
            # Checkpoints (copying the log into the database, and two fsyncs: 5-10 ms each)
            # run on a thread of their own instead of inside a commit on the event loop.
            self._conn.execute("PRAGMA wal_autocheckpoint=0")
        try:
            try:
                self._commit(groups, isolate=False)
            except sqlite3.IntegrityError:
                # One run's write broke a constraint (a run id taken, say): write each run
                # apart, so that only that run fails.
                self._commit(groups, isolate=True)
        except sqlite3.Error as error:
            for writer, _statements in groups:
                writer.failed = error

    def _commit(self, groups: list[tuple[RunWriter, list[Statement]]], isolate: bool) -> None:
        conn = self._conn
        assert conn is not None
        with immediate(conn):
            for writer, statements in groups:
                if isolate:
                    conn.execute("SAVEPOINT run_writes")
                try:
                    for sql, params in statements:
                        conn.execute(sql, params)
                except sqlite3.IntegrityError as error:
                    if not isolate:
                        raise
                    conn.execute("ROLLBACK TO run_writes")
                    writer.failed = error
                if isolate:
                    conn.execute("RELEASE run_writes")
        self._commits += 1
        if self._commits % CHECKPOINT_EVERY == 0:
            self._checkpoint_in_background()

    def _checkpoint_in_background(self) -> None:
        if self._checkpointer is not None and self._checkpointer.is_alive():
            return  # the last one is still at it; the log waits for the next
        self._checkpointer = threading.Thread(
            target=checkpoint, args=(self._store,), name="pdr-store-checkpoint", daemon=True
        )
        self._checkpointer.start()

    def close(self) -> None:
        """When the loop is gone: commit what its runs left pending (a run abandoned without
        its last event), then let the connection go."""
        self.flush()
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def checkpoint(store: StoreFile) -> None:
    """Copy the write-ahead log into the database, without waiting for anyone (PASSIVE)."""
    try:
        with closing(store.connect()) as conn:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except (sqlite3.Error, StoreError):
        # Nothing is lost: the log keeps every commit until a later checkpoint (the next
        # one, or SQLite's own when the last connection closes) copies it.
        return

