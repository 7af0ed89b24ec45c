"""Store: the SQLite run store, its file (`file`), tables (`migrations`), runs (`runs`,
`writer`), prompt sets and what endpoints were found to do (`capabilities`)."""

from __future__ import annotations

import sqlite3

from pdr_core.fold import trace_to_events
from pdr_core.heap import bulk_build
from pdr_core.ids import new_run_id
from pdr_core.store.capabilities import Capabilities
from pdr_core.store.prompt_sets import PromptSets
from pdr_core.store.runs import Runs
from pdr_core.store.writer import RunWriter
from pdr_core.trace import Trace


class Store(Runs, PromptSets, Capabilities):
    """A SQLite file of runs. Connections are opened per operation, so one Store may be
    used from several threads (a run writing, pages reading).

    `read_only` is set for a file (or folder) this process may not write, `damage` to what
    the check on opening found wrong; either way reads work and writes raise StoreError.
    """

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
