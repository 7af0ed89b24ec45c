"""Reading the runs: the run list (filtered and paged in SQL), a run folded from its events,
and a run's name, tags and deletion. A run still marked running whose process has died
reads as interrupted."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pdr_core.events import Event, event_from_dict
from pdr_core.fold import TraceBuilder
from pdr_core.store.errors import RunNotFound, StoreError
from pdr_core.store.file import StoreFile
from pdr_core.store.sql import like_escape, tag_text
from pdr_core.trace import RunOutcome, Trace, TraceError

# The run list shows the start of each question; the rest stays on disk.
QUESTION_PREVIEW = 300
# The tag every run of an evaluation carries, followed by the evaluation's id.
EVAL_TAG_PREFIX = "eval:"
# A RunSummary's columns, in the order `_summary` reads them.
SUMMARY_SELECT = (
    f"SELECT id, created_at, substr(question, 1, {QUESTION_PREVIEW}), method, model, status,"
    " final_answer, correct, b_seq, b_total, calls, name, tags, imported, owner_host,"
    " owner_pid, owner_started, config FROM runs")


def process_start(pid: int) -> str | None:
    """An identity for process `pid` that survives pid reuse (Linux), else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces; fields after its closing bracket are fixed.
    return stat.rsplit(")", 1)[1].split()[19]


def process_alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return started is None or process_start(pid) in (None, started)


@dataclass(frozen=True)
class RunSummary(RunOutcome):
    """One row of the run list: enough to draw it without loading any node."""

    id: str
    created_at: str
    question: str
    model: str
    name: str | None
    tags: tuple[str, ...]
    imported: bool
    config: dict = field(default_factory=dict)  # the run's settings, for its label


class Runs(StoreFile):
    """The runs kept in the store, as read."""

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
        sql = (f"{SUMMARY_SELECT} {where} ORDER BY created_at DESC, rowid DESC"
               + (" LIMIT ? OFFSET ?" if paged else ""))
        with self._conn() as conn:
            rows = conn.execute(sql, [*args, limit, offset] if paged else args).fetchall()
        summaries = [self._summary(row) for row in rows]
        if status:
            summaries = [s for s in summaries if s.status == status]
        return summaries if paged else summaries[offset : offset + limit]

    def summaries(self, run_ids: Iterable[str]) -> dict[str, RunSummary]:
        """The run list's rows of these runs, by id; a run not in the store is left out."""
        with self._conn() as conn:
            rows = conn.execute(f"{SUMMARY_SELECT} WHERE id IN (SELECT value FROM json_each(?))",
                                (json.dumps(list(run_ids)),)).fetchall()
        return {row[0]: self._summary(row) for row in rows}

    def _summary(self, row: tuple) -> RunSummary:
        return RunSummary(
            id=row[0], created_at=row[1], question=row[2], method=row[3], model=row[4],
            status=self._effective_status(row[5], row[14], row[15], row[16]),
            final_answer=row[6], correct=None if row[7] is None else bool(row[7]),
            b_seq=row[8], b_total=row[9], calls=row[10], name=row[11],
            tags=tuple(t for t in row[12].split(",") if t), imported=bool(row[13]),
            config=json.loads(row[17]),
        )

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

    def methods(self) -> list[str]:
        """Every method the stored runs recorded (a plugin's by its reference)."""
        with self._conn() as conn:
            rows = conn.execute("SELECT DISTINCT method FROM runs ORDER BY method").fetchall()
        return [method for (method,) in rows if method]

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
            args += [f"%{like_escape(text)}%"] * 4
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
        return "running" if process_alive(pid, started) else "interrupted"

    def resolve_id(self, prefix: str) -> str:
        """The full id of the one run whose id starts with `prefix`."""
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT id FROM runs WHERE id LIKE ? ESCAPE '\\' LIMIT 2",
                (like_escape(prefix) + "%",),
            ).fetchall()
        if not rows:
            raise RunNotFound(f"no run with id {prefix!r} in {self.path}")
        if len(rows) > 1:
            raise StoreError(f"id prefix {prefix!r} matches several runs; give more characters")
        return rows[0][0]

    def get_trace(self, run_id: str, live: LiveFold | None = None) -> Trace:
        """The run folded from its stored events, with the text of nodes in flight. With
        `live` (the fold of this run kept from an earlier read), only the events written
        since are read and folded: a running run polled twice a second is not folded whole
        each time."""
        live = live if live is not None else LiveFold()
        with self._conn() as conn:
            # One read transaction: a snapshot, so a run deleted or written meanwhile is
            # seen whole or not at all.
            conn.execute("BEGIN")
            status = self._status(conn, run_id)
            label = conn.execute("SELECT name, tags FROM runs WHERE id = ?", (run_id,)).fetchone()
            rows = conn.execute(
                "SELECT seq, payload FROM events WHERE run_id = ? AND seq > ? ORDER BY seq",
                (run_id, live.seq),
            ).fetchall()
            partials = dict(conn.execute(
                "SELECT node_id, text FROM partials WHERE run_id = ?", (run_id,)
            ).fetchall())
            conn.execute("COMMIT")
        if status is None:
            raise RunNotFound(f"no run with id {run_id!r} in {self.path}")
        for seq, payload in rows:
            live.fold.apply(event_from_dict(json.loads(payload)))
            live.seq = seq
        trace = live.fold.trace
        if trace is None:
            raise TraceError(f"run {run_id} has no events")
        trace.name, trace.tags = label[0], [t for t in label[1].split(",") if t]
        _as_read(trace, status, partials)
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
                "UPDATE runs SET name = ?, tags = ? WHERE id = ?", (name, tag_text(tags), run_id)
            ).rowcount
        if not changed:
            raise RunNotFound(f"no run with id {run_id!r} in {self.path}")



@dataclass
class LiveFold:
    """A running run's fold kept between reads, and the last event it holds (`seq`)."""

    fold: TraceBuilder = field(default_factory=TraceBuilder)
    seq: int = 0


def _as_read(trace: Trace, status: str, partials: dict[str, str]) -> None:
    """Nodes in flight show the text streamed so far; a run whose process died reads as
    interrupted, its calls in flight as failed."""
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
