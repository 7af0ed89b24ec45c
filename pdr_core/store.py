"""SQLite run store: every event is written as it arrives, so a killed process loses
nothing that had finished. Traces are folded from the stored events.

Streamed deltas are not kept as events (they would multiply the writes by the number of
chunks); the text of each node still in flight is kept, throttled, in `partials`.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

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
from pdr_core.prompts import PromptSet
from pdr_core.trace import Trace, TraceBuilder, TraceError, compute_budget, trace_to_events

APP_DIR = "pdr-inspector"
DB_NAME = "runs.sqlite"
# How often the text of in-flight nodes is written while it streams.
PARTIAL_FLUSH_SECONDS = 0.25
# How long a writer waits for another to finish before giving up.
BUSY_SECONDS = 30
# The run list shows the start of each question; the rest stays on disk.
QUESTION_PREVIEW = 300

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


class Store:
    """A SQLite file of runs. Connections are opened per operation, so one Store may be
    used from several threads (a run writing, pages reading)."""

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.path = Path(path) if path is not None else default_db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Runs hold prompts and outputs: readable by their owner only, from the first byte.
        if not self.path.exists():
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        with closing(self.connect()) as conn:
            self._migrate(conn)

    def connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None,
                                   check_same_thread=False)
            self._use_wal(conn)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open run store {self.path}: {exc}") from None
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

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
        finally:
            conn.close()

    def _migrate(self, conn: sqlite3.Connection) -> None:
        # The version is re-read inside the write lock: two processes opening a new file at
        # once must not both create the tables.
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has schema version {version}, newer than this version of "
                    f"PDR Inspector understands ({SCHEMA_VERSION}); upgrade the tool"
                )
            for number in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number + 1}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- writing -------------------------------------------------------------------

    def writer(self, name: str | None = None, tags: tuple[str, ...] = ()) -> RunWriter:
        """An event sink that persists one run as its events arrive, named and tagged."""
        return RunWriter(self, name=name, tags=tags)

    def resume_writer(self, run_id: str) -> RunWriter:
        """An event sink that appends to a stored run (to resume it)."""
        return RunWriter(self, existing=run_id)

    def import_trace(self, trace: Trace) -> str:
        """Store an imported trace as a run marked imported; returns its id (a fresh id
        when the original is already taken)."""
        with self._conn() as conn:
            taken = conn.execute("SELECT 1 FROM runs WHERE id = ?", (trace.id,)).fetchone()
        if taken:
            from pdr_core.methods import new_run_id

            trace.id = new_run_id()
        writer = RunWriter(self, imported=True)
        with writer.batch():
            for event in trace_to_events(trace):
                writer(event)
        return trace.id

    def save_prompt_set(self, name: str, prompts: PromptSet) -> int:
        """Store `prompts` as the next version of the set `name`; returns the version."""
        name = name.strip()
        if not name:
            raise StoreError("a prompt set needs a name")
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

    # -- reading -------------------------------------------------------------------

    def list_runs(
        self,
        limit: int = 50,
        offset: int = 0,
        method: str | None = None,
        model: str | None = None,
        status: str | None = None,
        text: str | None = None,
    ) -> list[RunSummary]:
        """Runs newest first, filtered and paged in SQL; reads only the runs table, and
        only the first QUESTION_PREVIEW characters of each question."""
        where, args = self._filters(method, model, status, text)
        # Running and interrupted depend on whether the owning process lives: page after.
        paged = status not in ("running", "interrupted")
        sql = (
            f"SELECT id, created_at, substr(question, 1, {QUESTION_PREVIEW}), method, model,"
            " status, final_answer, correct, b_seq, b_total, calls, name, tags, imported,"
            " owner_host, owner_pid, owner_started FROM runs"
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
            ))
        return summaries if paged else summaries[offset : offset + limit]

    def count_runs(self, method: str | None = None, model: str | None = None,
                   status: str | None = None, text: str | None = None) -> int:
        """How many runs `list_runs` with these filters pages through."""
        if status in ("running", "interrupted"):
            return len(self.list_runs(limit=10**9, method=method, model=model, status=status,
                                      text=text))
        where, args = self._filters(method, model, status, text)
        with self._conn() as conn:
            return conn.execute(f"SELECT count(*) FROM runs {where}", args).fetchone()[0]

    def models(self) -> list[str]:
        """Every model name the stored runs used."""
        with self._conn() as conn:
            rows = conn.execute("SELECT DISTINCT model FROM runs ORDER BY model").fetchall()
        return [model for (model,) in rows if model]

    def _filters(self, method: str | None, model: str | None, status: str | None,
                 text: str | None) -> tuple[str, list[str]]:
        clauses, args = [], []
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
        with self._conn() as conn:
            changed = conn.execute(
                "UPDATE runs SET name = ?, tags = ? WHERE id = ?", (name, _tag_text(tags), run_id)
            ).rowcount
        if not changed:
            raise RunNotFound(f"no run with id {run_id!r} in {self.path}")


def _like_escape(text: str) -> str:
    """`text` matched literally by LIKE (its % and _ are not wildcards)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _tag_text(tags: tuple[str, ...]) -> str:
    """Tags as stored: comma-separated, no commas inside a tag."""
    return ",".join(t.strip().replace(",", " ") for t in tags if t.strip())


class RunWriter:
    """Event sink persisting one run: one transaction per node or run event."""

    def __init__(self, store: Store, imported: bool = False, name: str | None = None,
                 tags: tuple[str, ...] = (), existing: str | None = None):
        self.store = store
        self.imported = imported
        self.name = name
        self.tags = _tag_text(tags)
        self._conn = store.connect()
        self._builder = TraceBuilder()
        self._seq = 0
        if existing is not None:
            for event in store.events(existing):
                self._builder.apply(event)
                self._seq += 1
        self._dirty: set[str] = set()
        self._last_flush = 0.0
        self._in_batch = False

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Write every event inside one transaction (imports): all or nothing."""
        self._conn.execute("BEGIN IMMEDIATE")
        self._in_batch = True
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        else:
            self._conn.execute("COMMIT")
        finally:
            self._in_batch = False
            self._conn.close()

    def __call__(self, event: Event) -> None:
        self._builder.apply(event)
        if isinstance(event, NodeDelta):
            self._dirty.add(event.node_id)
            if not self._in_batch and time.monotonic() - self._last_flush >= PARTIAL_FLUSH_SECONDS:
                self._flush_partials()
            return
        conn = self._conn
        if not self._in_batch:
            conn.execute("BEGIN IMMEDIATE")
        try:
            if isinstance(event, RunStarted):
                self._insert_run(event)
            elif isinstance(event, RunResumed):
                pid = os.getpid()
                conn.execute(
                    "UPDATE runs SET status = 'running', owner_host = ?, owner_pid = ?,"
                    " owner_started = ?, updated_at = ? WHERE id = ?",
                    (socket.gethostname(), pid, _process_start(pid), now_iso(), event.run_id),
                )
            trace = self._builder.trace
            assert trace is not None
            self._seq += 1
            conn.execute(
                "INSERT INTO events (run_id, seq, payload) VALUES (?, ?, ?)",
                (trace.id, self._seq, json.dumps(event_to_dict(event), ensure_ascii=False)),
            )
            if isinstance(event, (NodeFinished, NodeFailed)):
                conn.execute("DELETE FROM partials WHERE run_id = ? AND node_id = ?",
                             (trace.id, event.node_id))
                self._dirty.discard(event.node_id)
            if isinstance(event, (NodeFinished, NodeFailed, RunFinished)):
                self._update_summary(trace)
            if isinstance(event, RunFinished):
                conn.execute("DELETE FROM partials WHERE run_id = ?", (trace.id,))
        except BaseException:
            if not self._in_batch:
                conn.execute("ROLLBACK")
            raise
        if not self._in_batch:
            conn.execute("COMMIT")
            if isinstance(event, RunFinished):
                conn.close()

    def _insert_run(self, event: RunStarted) -> None:
        config = event.config
        pid = os.getpid()
        self._conn.execute(
            "INSERT INTO runs (id, created_at, updated_at, question, reference_answer, method,"
            " model, config, status, imported, owner_host, owner_pid, owner_started, name, tags,"
            " parent_run_id, parent_node_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?)",
            (event.run_id, event.created_at, now_iso(), event.question, event.reference_answer,
             config.get("method", ""), config.get("model", "") or "", json.dumps(config),
             int(self.imported), socket.gethostname(), pid, _process_start(pid), self.name,
             self.tags, event.parent_run_id, event.parent_node_id),
        )

    def _update_summary(self, trace: Trace) -> None:
        budget = compute_budget(trace.nodes)
        self._conn.execute(
            "UPDATE runs SET updated_at = ?, status = ?, final_answer = ?, correct = ?,"
            " b_seq = ?, b_total = ?, calls = ?, error = ?, stop_reason = ? WHERE id = ?",
            (now_iso(), trace.status, trace.final_answer,
             None if trace.correct is None else int(trace.correct), budget.b_seq,
             budget.b_total, budget.calls, trace.error, trace.stop_reason, trace.id),
        )

    def _flush_partials(self) -> None:
        trace = self._builder.trace
        if trace is None or not self._dirty:
            return
        rows = [(trace.id, node_id, self._builder.partial.get(node_id, ""))
                for node_id in self._dirty]
        self._conn.execute("BEGIN IMMEDIATE")
        self._conn.executemany(
            "INSERT OR REPLACE INTO partials (run_id, node_id, text) VALUES (?, ?, ?)", rows
        )
        self._conn.execute("COMMIT")
        self._dirty.clear()
        self._last_flush = time.monotonic()
