"""The store's file: opened, checked and migrated, and connected to per operation."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import time
import weakref
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from pdr_core.loops import PerLoop
from pdr_core.store.damage import BUSY_SECONDS, connect_read_only, failure, quick_check, refusal
from pdr_core.store.errors import StoreError
from pdr_core.store.group_commit import GroupCommit
from pdr_core.store.migrations import migrate

APP_DIR = "pdr-inspector"
DB_NAME = "runs.sqlite"


def default_db_path() -> Path:
    """`PDR_DB`, else runs.sqlite in the per-user data folder of this platform."""
    env = os.environ.get("PDR_DB")
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / APP_DIR / DB_NAME


class StoreFile:
    """The file under a Store: created readable by its owner only, checked and migrated
    when opened, connected to per operation (see `Store`)."""

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.path = Path(path) if path is not None else default_db_path()
        self.read_only = False
        self.damage: str | None = None
        try:
            if not self.path.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # Runs hold prompts and outputs: readable by their owner only, from the
                # first byte.
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as exc:
            raise StoreError(f"cannot create run store {self.path}: {exc.strerror}; choose "
                             "another file with --db PATH or PDR_DB") from None
        # SQLite writes a -wal and a -shm file beside the store: the folder must be
        # writable too.
        self.read_only = not (os.access(self.path, os.W_OK)
                              and os.access(self.path.parent, os.W_OK))
        try:
            with closing(self.connect()) as conn:
                self.damage = quick_check(conn)
                if self.damage is None:
                    migrate(conn, self.path, self.read_only)
        except sqlite3.DatabaseError as exc:
            raise self._failure(exc) from None
        # Per event loop, the grouped commits of the runs on it (see GroupCommit).
        self._groups: PerLoop[GroupCommit] = PerLoop(self._new_group)

    def _new_group(self, loop: asyncio.AbstractEventLoop) -> GroupCommit:
        group = GroupCommit(self)
        weakref.finalize(loop, group.close)
        return group

    def _group_commit(self) -> GroupCommit:
        """The grouped commits of the running event loop."""
        return self._groups.get()

    def connect(self) -> sqlite3.Connection:
        """A connection; one that cannot write when the store is read-only or damaged."""
        if self.read_only or self.damage is not None:
            try:
                return connect_read_only(self.path)
            except sqlite3.DatabaseError as exc:
                raise self._failure(exc) from None
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None,
                                   check_same_thread=False)
            self._use_wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as exc:
            raise self._failure(exc) from None
        return conn

    def check_writable(self) -> None:
        """StoreError, saying what to do, when this store must not be written."""
        error = refusal(self.path, self.damage, self.read_only)
        if error is not None:
            raise error

    def _failure(self, exc: sqlite3.DatabaseError) -> StoreError:
        """A one-line StoreError for an SQLite failure, saying what to do; a failure that
        shows the file read-only or damaged marks the store so."""
        found = failure(self.path, exc)
        self.read_only = self.read_only or found.read_only
        if found.damage is not None:
            self.damage = self.damage or found.damage
        return found.error

    @staticmethod
    def _use_wal(conn: sqlite3.Connection) -> None:
        """Switch to WAL once per file. The switch does not wait on the busy timeout, so
        while another process is creating the store it is retried until that one is done."""
        deadline = time.monotonic() + BUSY_SECONDS
        while True:
            try:
                if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        conn = self.connect()
        try:
            yield conn
        except sqlite3.IntegrityError:
            raise  # a broken constraint is the caller's to handle
        except sqlite3.DatabaseError as exc:
            raise self._failure(exc) from None
        finally:
            conn.close()
