"""SQLite run store: every event is written as it arrives (the runs of one event loop commit
together every GROUP_COMMIT_SECONDS), so a killed process loses at most its last instant;
resuming the run calls again only what was not recorded. Traces are folded from the stored
events.

Streamed deltas are not kept as events (they would multiply the writes by the number of
chunks); the text of each node still in flight is kept, throttled, in `partials`.

A store is checked when it is opened (`PRAGMA quick_check`). A damaged one is read as far as
it can be and never written again (writing into a damaged file can only make it worse); a
read-only one is read. Every SQLite failure reaches the caller as a one-line StoreError that
says what to do.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from pdr_core.events import (
    Event,
    NodeDelta,
    NodeFailed,
    NodeFinished,
    RunFinished,
    RunResumed,
    RunStarted,
    event_from_dict,
    event_to_dict,
    now_iso,
)
from pdr_core.heap import bulk_build
from pdr_core.prompts import PromptSet
from pdr_core.providers.base import Known
from pdr_core.trace import Trace, TraceBuilder, TraceError, compute_budget, trace_to_events

APP_DIR = "pdr-inspector"
DB_NAME = "runs.sqlite"
# How often the text of in-flight nodes is written while it streams.
PARTIAL_FLUSH_SECONDS = 0.25
# How long the events of runs on an event loop wait to be committed together (_GroupCommit).
GROUP_COMMIT_SECONDS = 0.02
# Grouped commits between two checkpoints of the write-ahead log (about 15 pages a commit).
CHECKPOINT_EVERY = 100
# How long a writer waits for another to finish before giving up.
BUSY_SECONDS = 30
# The run list shows the start of each question; the rest stays on disk.
QUESTION_PREVIEW = 300
# The tag every run of an evaluation carries, followed by the evaluation's id.
EVAL_TAG_PREFIX = "eval:"

# Each entry upgrades the schema by one version; append, never edit, to migrate.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        question TEXT NOT NULL,
        reference_answer TEXT,
        method TEXT NOT NULL,
        model TEXT NOT NULL DEFAULT '',
        config TEXT NOT NULL,
        status TEXT NOT NULL,
        final_answer TEXT,
        correct INTEGER,
        b_seq INTEGER NOT NULL DEFAULT 0,
        b_total INTEGER NOT NULL DEFAULT 0,
        calls INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        stop_reason TEXT,
        name TEXT,
        tags TEXT NOT NULL DEFAULT '',
        imported INTEGER NOT NULL DEFAULT 0,
        owner_host TEXT,
        owner_pid INTEGER,
        owner_started TEXT
    );
    CREATE INDEX runs_by_created ON runs (created_at DESC);
    CREATE TABLE events (
        run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        payload TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE partials (
        run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        node_id TEXT NOT NULL,
        text TEXT NOT NULL,
        PRIMARY KEY (run_id, node_id)
    ) WITHOUT ROWID;
    """,
    # 2: forks record the run and node they came from.
    """
    ALTER TABLE runs ADD COLUMN parent_run_id TEXT;
    ALTER TABLE runs ADD COLUMN parent_node_id TEXT
    """,
    # 3: named prompt sets; every save is a new version.
    """
    CREATE TABLE prompt_sets (
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        templates TEXT NOT NULL,
        PRIMARY KEY (name, version)
    ) WITHOUT ROWID
    """,
    # 4: what endpoints were found to do (does it honour n?), per base URL and model.
    """
    CREATE TABLE endpoint_capabilities (
        base_url TEXT NOT NULL,
        model TEXT NOT NULL,
        name TEXT NOT NULL,
        value INTEGER NOT NULL,
        learned_at REAL NOT NULL,
        PRIMARY KEY (base_url, model, name)
    ) WITHOUT ROWID
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(Exception):
    """A store operation that cannot be done; the message says why."""


class RunNotFound(StoreError, KeyError):
    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "run not found"


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


def _process_start(pid: int) -> str | None:
    """An identity for process `pid` that survives pid reuse (Linux), else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces; fields after its closing bracket are fixed.
    return stat.rsplit(")", 1)[1].split()[19]


def _process_alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return started is None or _process_start(pid) in (None, started)


@dataclass(frozen=True)
class RunSummary:
    """One row of the run list: enough to draw it without loading any node."""

    id: str
    created_at: str
    question: str
    method: str
    model: str
    status: str
    final_answer: str | None
    correct: bool | None
    b_seq: int
    b_total: int
    calls: int
    name: str | None
    tags: tuple[str, ...]
    imported: bool
    config: dict = field(default_factory=dict)  # the run's settings, for its label


class Store:
    """A SQLite file of runs. Connections are opened per operation, so one Store may be
    used from several threads (a run writing, pages reading).

    `read_only` is set for a file (or folder) this process may not write, `damage` to what
    the check on opening found wrong; either way reads work and writes raise StoreError.
    """

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
                self.damage = _quick_check(conn)
                if self.damage is None:
                    self._migrate(conn)
        except sqlite3.DatabaseError as exc:
            raise self._failure(exc) from None
        # Per event loop, the grouped commits of the runs on it (see _GroupCommit).
        self._groups: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _GroupCommit] = (
            weakref.WeakKeyDictionary()
        )
        self._groups_lock = threading.Lock()

    def _group_commit(self) -> _GroupCommit:
        """The grouped commits of the running event loop."""
        loop = asyncio.get_running_loop()
        with self._groups_lock:
            group = self._groups.get(loop)
            if group is None:
                group = self._groups[loop] = _GroupCommit(self)
                weakref.finalize(loop, group.close)
            return group

    def connect(self) -> sqlite3.Connection:
        """A connection; one that cannot write when the store is read-only or damaged."""
        if self.read_only or self.damage is not None:
            return self._connect_read_only()
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None,
                                   check_same_thread=False)
            self._use_wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as exc:
            raise self._failure(exc) from None
        return conn

    def _connect_read_only(self) -> sqlite3.Connection:
        """Read a store this process may not (or must not: it is damaged) write. A store in
        WAL mode needs its -shm file, which a read-only folder may lack: then the file is read
        as it is on disk (immutable), since no one here can be writing it."""
        uri = f"file:{quote(str(self.path.resolve()))}"
        failure: sqlite3.DatabaseError | None = None
        for mode in ("mode=ro", "immutable=1"):
            try:
                conn = sqlite3.connect(f"{uri}?{mode}", uri=True, timeout=BUSY_SECONDS,
                                       isolation_level=None, check_same_thread=False)
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                return conn
            except sqlite3.DatabaseError as exc:
                failure = exc
        raise self._failure(failure) from None

    def check_writable(self) -> None:
        """StoreError, saying what to do, when this store must not be written."""
        if self.damage is not None:
            raise StoreError(
                f"run store {self.path} is damaged ({self.damage}), so nothing is written to "
                f"it. Save what can be read (python -m pdr_core list --db {self.path}, then "
                f"export each run with --out), move the file aside, and start a new store "
                "there or with --db PATH"
            )
        if self.read_only:
            raise StoreError(
                f"run store {self.path} is read-only for this user: runs can be listed, "
                "shown and exported, not saved. Make the file and its folder writable, or "
                "use another store with --db PATH or PDR_DB"
            )

    def _failure(self, exc: sqlite3.DatabaseError) -> StoreError:
        """A one-line StoreError for an SQLite failure, saying what to do."""
        text = " ".join(str(exc).split())
        if "locked" in text or "busy" in text:
            return StoreError(f"run store {self.path} is busy: another process kept it locked "
                              f"for {BUSY_SECONDS} s; try again when it is done")
        if "full" in text:
            return StoreError(f"the disk holding run store {self.path} is full ({text}): the "
                              "last writes were not saved; free some space and try again")
        if "readonly" in text or "read-only" in text or "unable to open" in text:
            self.read_only = True
            return StoreError(f"run store {self.path} cannot be opened for writing ({text}): "
                              "make the file and its folder readable and writable, or use "
                              "another store with --db PATH or PDR_DB")
        self.damage = self.damage or text
        if "not a database" in text:
            return StoreError(
                f"cannot open run store {self.path}: {text}. Check that this is the right "
                "file; if it was a run store, it is damaged beyond reading: move it aside and "
                "start a new store there or with --db PATH"
            )
        return StoreError(
            f"run store {self.path} is damaged or not a run store ({text}). Save what can "
            "still be read (export each run with --out), move the file aside, and start a new "
            "store there or with --db PATH"
        )

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

    def _migrate(self, conn: sqlite3.Connection) -> None:
        if self.read_only:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version < SCHEMA_VERSION:
                raise StoreError(
                    f"run store {self.path} is read-only and needs its tables made or "
                    f"upgraded (schema version {version} of {SCHEMA_VERSION}), which writes to "
                    "it: open it once with write access, or use another store with --db PATH"
                )
            self._check_version(version)
            return
        # The version is re-read inside the write lock: two processes opening a new file at
        # once must not both create the tables.
        with _immediate(conn):
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            self._check_version(version)
            for number in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number + 1}")

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {version}, newer than this version of "
                f"PDR Inspector understands ({SCHEMA_VERSION}); upgrade the tool"
            )

    # -- writing -------------------------------------------------------------------

    def writer(self, name: str | None = None, tags: tuple[str, ...] = ()) -> RunWriter:
        """An event sink that persists one run as its events arrive, named and tagged."""
        self.check_writable()
        return RunWriter(self, name=name, tags=tags)

    def resume_writer(self, run_id: str) -> RunWriter:
        """An event sink that appends to a stored run (to resume it)."""
        self.check_writable()
        return RunWriter(self, existing=run_id)

    def import_trace(self, trace: Trace) -> str:
        """Store an imported trace as a run marked imported; returns its id (a fresh id
        when the original is already taken)."""
        self.check_writable()
        with self._conn() as conn:
            taken = conn.execute("SELECT 1 FROM runs WHERE id = ?", (trace.id,)).fetchone()
        if taken:
            from pdr_core.methods import new_run_id

            trace.id = new_run_id()
        writer = RunWriter(self, imported=True, name=trace.name, tags=tuple(trace.tags))
        try:
            with bulk_build(), writer.batch():
                for event in trace_to_events(trace):
                    writer(event)
        except sqlite3.IntegrityError:
            raise
        except sqlite3.DatabaseError as exc:  # nothing was written: the batch rolled back
            raise self._failure(exc) from None
        return trace.id

    def save_prompt_set(self, name: str, prompts: PromptSet) -> int:
        """Store `prompts` as the next version of the set `name`; returns the version."""
        name = name.strip()
        if not name:
            raise StoreError("a prompt set needs a name")
        self.check_writable()
        with self._conn() as conn:
            conn.execute("BEGIN IMMEDIATE")
            (latest,) = conn.execute(
                "SELECT coalesce(max(version), 0) FROM prompt_sets WHERE name = ?", (name,)
            ).fetchone()
            conn.execute(
                "INSERT INTO prompt_sets (name, version, created_at, templates)"
                " VALUES (?, ?, ?, ?)",
                (name, latest + 1, now_iso(), json.dumps(prompts.to_dict())),
            )
            conn.execute("COMMIT")
        return latest + 1

    def prompt_sets(self) -> dict[str, int]:
        """Every prompt set's name and latest version."""
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT name, max(version) FROM prompt_sets GROUP BY name ORDER BY name"
            ).fetchall()
        return dict(rows)

    def prompt_set(self, name: str, version: int | None = None) -> PromptSet:
        """A stored prompt set (its latest version unless one is named)."""
        with self._conn() as conn:
            row = conn.execute(
                "SELECT templates FROM prompt_sets WHERE name = ? AND (? IS NULL OR version = ?)"
                " ORDER BY version DESC LIMIT 1", (name, version, version),
            ).fetchone()
        if row is None:
            raise StoreError(f"no prompt set {name!r}" + (f" version {version}" if version
                                                         else ""))
        return PromptSet.from_dict(json.loads(row[0]))

    # -- what endpoints do (a CapabilityMemory for the providers) -----------------------

    def recall(self, base_url: str, model: str, name: str) -> Known | None:
        """What was learnt of `name` for this endpoint and model, and how long ago."""
        with self._conn() as conn:
            row = conn.execute(
                "SELECT value, learned_at FROM endpoint_capabilities"
                " WHERE base_url = ? AND model = ? AND name = ?", (base_url, model, name),
            ).fetchone()
        return None if row is None else Known(bool(row[0]), max(time.time() - row[1], 0.0))

    def remember(self, base_url: str, model: str, name: str, value: bool) -> None:
        """Keep what was learnt; a store that cannot be written forgets (it is only a
        shortcut: the next run learns it again)."""
        if self.read_only or self.damage is not None:
            return
        try:
            with self._conn() as conn:
                conn.execute(
                    "INSERT OR REPLACE INTO endpoint_capabilities"
                    " (base_url, model, name, value, learned_at) VALUES (?, ?, ?, ?, ?)",
                    (base_url, model, name, int(value), time.time()),
                )
        except StoreError:
            return

    # -- reading -------------------------------------------------------------------

    def list_runs(
        self,
        limit: int = 50,
        offset: int = 0,
        method: str | None = None,
        model: str | None = None,
        status: str | None = None,
        text: str | None = None,
        evaluations: bool = True,
    ) -> list[RunSummary]:
        """Runs newest first, filtered and paged in SQL; reads only the runs table, and
        only the first QUESTION_PREVIEW characters of each question. `evaluations=False`
        leaves out the runs of evaluations (tagged EVAL_TAG_PREFIX + the evaluation's id)."""
        where, args = self._filters(method, model, status, text, evaluations)
        # Running and interrupted depend on whether the owning process lives: page after.
        paged = status not in ("running", "interrupted")
        sql = (
            f"SELECT id, created_at, substr(question, 1, {QUESTION_PREVIEW}), method, model,"
            " status, final_answer, correct, b_seq, b_total, calls, name, tags, imported,"
            " owner_host, owner_pid, owner_started, config FROM runs"
            f" {where} ORDER BY created_at DESC, rowid DESC"
            + (" LIMIT ? OFFSET ?" if paged else "")
        )
        with self._conn() as conn:
            rows = conn.execute(sql, [*args, limit, offset] if paged else args).fetchall()
        summaries = []
        for row in rows:
            state = self._effective_status(row[5], row[14], row[15], row[16])
            if status and state != status:
                continue
            summaries.append(RunSummary(
                id=row[0], created_at=row[1], question=row[2], method=row[3], model=row[4],
                status=state, final_answer=row[6],
                correct=None if row[7] is None else bool(row[7]), b_seq=row[8],
                b_total=row[9], calls=row[10], name=row[11],
                tags=tuple(t for t in row[12].split(",") if t), imported=bool(row[13]),
                config=json.loads(row[17]),
            ))
        return summaries if paged else summaries[offset : offset + limit]

    def count_runs(self, method: str | None = None, model: str | None = None,
                   status: str | None = None, text: str | None = None,
                   evaluations: bool = True) -> int:
        """How many runs `list_runs` with these filters pages through."""
        if status in ("running", "interrupted"):
            return len(self.list_runs(limit=10**9, method=method, model=model, status=status,
                                      text=text, evaluations=evaluations))
        where, args = self._filters(method, model, status, text, evaluations)
        with self._conn() as conn:
            return conn.execute(f"SELECT count(*) FROM runs {where}", args).fetchone()[0]

    def models(self) -> list[str]:
        """Every model name the stored runs used."""
        with self._conn() as conn:
            rows = conn.execute("SELECT DISTINCT model FROM runs ORDER BY model").fetchall()
        return [model for (model,) in rows if model]

    def _filters(self, method: str | None, model: str | None, status: str | None,
                 text: str | None, evaluations: bool = True) -> tuple[str, list[str]]:
        clauses, args = [], []
        if not evaluations:
            # tags are stored comma-joined: a leading comma anchors the prefix to a tag start
            clauses.append("(',' || tags) NOT LIKE ?")
            args.append(f"%,{EVAL_TAG_PREFIX}%")
        if method:
            clauses.append("method = ?")
            args.append(method)
        if model:
            clauses.append("model = ?")
            args.append(model)
        if status == "interrupted":
            clauses.append("status IN ('interrupted', 'running')")
        elif status:
            clauses.append("status = ?")
            args.append(status)
        if text:
            clauses.append("(question LIKE ? ESCAPE '\\' OR name LIKE ? ESCAPE '\\'"
                           " OR tags LIKE ? ESCAPE '\\' OR id LIKE ? ESCAPE '\\')")
            args += [f"%{_like_escape(text)}%"] * 4
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", args

    def _status(self, conn: sqlite3.Connection, run_id: str) -> str | None:
        """The run's status as read (see `_effective_status`), None when there is no run."""
        row = conn.execute(
            "SELECT status, owner_host, owner_pid, owner_started FROM runs WHERE id = ?",
            (run_id,),
        ).fetchone()
        return None if row is None else self._effective_status(*row)

    def _effective_status(self, status: str, host: str | None, pid: int | None,
                          started: str | None) -> str:
        """A run still marked running whose process on this host has died is interrupted."""
        if status != "running" or pid is None or host != socket.gethostname():
            return status
        return "running" if _process_alive(pid, started) else "interrupted"

    def resolve_id(self, prefix: str) -> str:
        """The full id of the one run whose id starts with `prefix`."""
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT id FROM runs WHERE id LIKE ? ESCAPE '\\' LIMIT 2",
                (_like_escape(prefix) + "%",),
            ).fetchall()
        if not rows:
            raise RunNotFound(f"no run with id {prefix!r} in {self.path}")
        if len(rows) > 1:
            raise StoreError(f"id prefix {prefix!r} matches several runs; give more characters")
        return rows[0][0]

    def get_trace(self, run_id: str) -> Trace:
        """The run folded from its stored events, with the text of nodes in flight."""
        with self._conn() as conn:
            # One read transaction: a snapshot, so a run deleted or written meanwhile is
            # seen whole or not at all.
            conn.execute("BEGIN")
            status = self._status(conn, run_id)
            label = conn.execute("SELECT name, tags FROM runs WHERE id = ?", (run_id,)).fetchone()
            payloads = conn.execute(
                "SELECT payload FROM events WHERE run_id = ? ORDER BY seq", (run_id,)
            ).fetchall()
            partials = dict(conn.execute(
                "SELECT node_id, text FROM partials WHERE run_id = ?", (run_id,)
            ).fetchall())
            conn.execute("COMMIT")
        if status is None:
            raise RunNotFound(f"no run with id {run_id!r} in {self.path}")
        builder = TraceBuilder()
        for (payload,) in payloads:
            builder.apply(event_from_dict(json.loads(payload)))
        trace = builder.trace
        if trace is None:
            raise TraceError(f"run {run_id} has no events")
        trace.name, trace.tags = label[0], [t for t in label[1].split(",") if t]
        for node in trace.nodes:
            if node.status == "running":
                node.text = partials.get(node.id, "")
                if status == "interrupted":
                    node.status = "failed"
                    node.error = "interrupted: the process stopped before this call finished"
                    node.error_kind = "interrupted"
        if trace.status == "running" and status == "interrupted":
            trace.status = "interrupted"
            trace.error = "the process running it stopped"
        return trace

    def revision(self, run_id: str) -> tuple[str, str, int]:
        """What changes whenever the run does: its status (as read), when its row was last
        updated, and how many events it has. Cheap: no event is read."""
        with self._conn() as conn:
            status = self._status(conn, run_id)
            if status is None:
                raise RunNotFound(f"no run with id {run_id!r} in {self.path}")
            (updated_at,) = conn.execute(
                "SELECT updated_at FROM runs WHERE id = ?", (run_id,)).fetchone()
            (events,) = conn.execute(
                "SELECT coalesce(max(seq), 0) FROM events WHERE run_id = ?", (run_id,)
            ).fetchone()
        return status, updated_at, events

    def events(self, run_id: str) -> list[Event]:
        with self._conn() as conn:
            payloads = conn.execute(
                "SELECT payload FROM events WHERE run_id = ? ORDER BY seq", (run_id,)
            ).fetchall()
        return [event_from_dict(json.loads(p)) for (p,) in payloads]

    def delete_run(self, run_id: str) -> None:
        """Delete a run that is not running (cancel it first, or let it finish)."""
        self.check_writable()
        with self._conn() as conn:
            conn.execute("BEGIN IMMEDIATE")
            if self._status(conn, run_id) == "running":
                conn.execute("ROLLBACK")
                raise StoreError(f"run {run_id} is still running: cancel it or let it finish "
                                 "before deleting it")
            deleted = conn.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount
            conn.execute("COMMIT")
        if not deleted:
            raise RunNotFound(f"no run with id {run_id!r} in {self.path}")

    def set_name(self, run_id: str, name: str | None, tags: tuple[str, ...] = ()) -> None:
        self.check_writable()
        with self._conn() as conn:
            changed = conn.execute(
                "UPDATE runs SET name = ?, tags = ? WHERE id = ?", (name, _tag_text(tags), run_id)
            ).rowcount
        if not changed:
            raise RunNotFound(f"no run with id {run_id!r} in {self.path}")


def _quick_check(conn: sqlite3.Connection) -> str | None:
    """What SQLite's quick check finds wrong with the file (its first finding), else None."""
    try:
        rows = conn.execute("PRAGMA quick_check(3)").fetchall()
    except sqlite3.DatabaseError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise
        return " ".join(str(exc).split())
    found = [" ".join(str(row[0]).replace("*** in database main ***", "").split())
             for row in rows if row[0] != "ok"]
    return "; ".join(found)[:300] if found else None


def _like_escape(text: str) -> str:
    """`text` matched literally by LIKE (its % and _ are not wildcards)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _tag_text(tags: tuple[str, ...]) -> str:
    """Tags as stored: comma-separated, no commas inside a tag."""
    return ",".join(t.strip().replace(",", " ") for t in tags if t.strip())


# One SQL statement and its parameters.
_Statement = tuple[str, tuple]


@contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction: committed if the block ends normally, else rolled back."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class _GroupCommit:
    """The writes of every run on one event loop, committed together every few milliseconds.

    An evaluation runs hundreds of runs at once. With a connection and a transaction per run
    event, each commit found its page cache stale (another run had written since) and the
    store took 7-8 % of the wall time (BENCHMARKS.md). One connection, and one transaction for
    whatever all the runs wrote in the last GROUP_COMMIT_SECONDS, cost a fraction of that. A
    run's last event is committed at once (`RunWriter`), so a finished run is always whole on
    disk; a process killed mid-run loses at most its last GROUP_COMMIT_SECONDS of events,
    which resuming it calls again.
    """

    def __init__(self, store: Store):
        self._store = store
        self._conn: sqlite3.Connection | None = None
        # Per run (in the order they wrote), the statements waiting for the next commit.
        self._pending: dict[RunWriter, list[_Statement]] = {}
        # A flush is due on the loop's timer. (Not the TimerHandle itself: it holds the loop,
        # and the loop must be free to go, taking this with it, when it ends.)
        self._scheduled = False
        self._commits = 0
        self._checkpointer: threading.Thread | None = None

    def add(self, writer: RunWriter, statements: list[_Statement]) -> None:
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

    def _commit(self, groups: list[tuple[RunWriter, list[_Statement]]], isolate: bool) -> None:
        conn = self._conn
        assert conn is not None
        with _immediate(conn):
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
            target=_checkpoint, args=(self._store,), name="pdr-store-checkpoint", daemon=True
        )
        self._checkpointer.start()

    def close(self) -> None:
        """When the loop is gone: commit what its runs left pending (a run abandoned without
        its last event), then let the connection go."""
        self.flush()
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _checkpoint(store: Store) -> None:
    """Copy the write-ahead log into the database, without waiting for anyone (PASSIVE)."""
    try:
        with closing(store.connect()) as conn:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except (sqlite3.Error, StoreError):
        # Nothing is lost: the log keeps every commit until a later checkpoint (the next
        # one, or SQLite's own when the last connection closes) copies it.
        return


class RunWriter:
    """Event sink persisting one run as its events arrive.

    On an event loop, the writes of all the runs on that loop share one connection and are
    committed in groups (`_GroupCommit`); a run's last event is committed before the sink
    returns. Outside an event loop, each event is its own transaction.
    """

    def __init__(self, store: Store, imported: bool = False, name: str | None = None,
                 tags: tuple[str, ...] = (), existing: str | None = None):
        self.store = store
        self.imported = imported
        self.name = name
        self.tags = _tag_text(tags)
        self._conn: sqlite3.Connection | None = None  # for writes made outside a loop
        self._builder = TraceBuilder()
        self._seq = 0
        if existing is not None:
            for event in store.events(existing):
                self._builder.apply(event)
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
            with _immediate(conn):
                yield
                for sql, params in self.take_summary():
                    conn.execute(sql, params)
        finally:
            self._in_batch = False
            self._close()

    def __call__(self, event: Event) -> None:
        self._raise_failed()
        self._builder.apply(event)
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

    def _statements(self, event: Event) -> list[_Statement]:
        """The writes that record `event` (the run's summary row apart: `take_summary`)."""
        trace = self._builder.trace
        assert trace is not None
        statements: list[_Statement] = []
        if isinstance(event, RunStarted):
            statements.append(self._insert_run(event))
        elif isinstance(event, RunResumed):
            pid = os.getpid()
            statements.append((
                "UPDATE runs SET status = 'running', owner_host = ?, owner_pid = ?,"
                " owner_started = ?, updated_at = ? WHERE id = ?",
                (socket.gethostname(), pid, _process_start(pid), now_iso(), event.run_id),
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

    def take_summary(self) -> list[_Statement]:
        """The update of the run's row in the run list, if a node finished since the last."""
        if not self._summary_due:
            return []
        self._summary_due = False
        trace = self._builder.trace
        assert trace is not None
        budget = compute_budget(trace.nodes)
        return [(
            "UPDATE runs SET updated_at = ?, status = ?, final_answer = ?, correct = ?,"
            " b_seq = ?, b_total = ?, calls = ?, error = ?, stop_reason = ? WHERE id = ?",
            (now_iso(), trace.status, trace.final_answer,
             None if trace.correct is None else int(trace.correct), budget.b_seq,
             budget.b_total, budget.calls, trace.error, trace.stop_reason, trace.id),
        )]

    def _write(self, statements: list[_Statement], now: bool = False) -> None:
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
                with _immediate(self._connection()) as conn:
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

    def _insert_run(self, event: RunStarted) -> _Statement:
        config = event.config
        pid = os.getpid()
        return (
            "INSERT INTO runs (id, created_at, updated_at, question, reference_answer, method,"
            " model, config, status, imported, owner_host, owner_pid, owner_started, name, tags,"
            " parent_run_id, parent_node_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?)",
            (event.run_id, event.created_at, now_iso(), event.question, event.reference_answer,
             config.get("method", ""), config.get("model", "") or "", json.dumps(config),
             int(self.imported), socket.gethostname(), pid, _process_start(pid), self.name,
             self.tags, event.parent_run_id, event.parent_node_id),
        )

    def _partials(self) -> list[_Statement]:
        """The text so far of the nodes that streamed since the last time."""
        trace = self._builder.trace
        if trace is None or not self._dirty:
            return []
        statements = [
            ("INSERT OR REPLACE INTO partials (run_id, node_id, text) VALUES (?, ?, ?)",
             (trace.id, node_id, self._builder.partial.get(node_id, "")))
            for node_id in self._dirty
        ]
        self._partial_rows.update(self._dirty)
        self._dirty.clear()
        return statements
