"""SQLite run store: every event is written as it arrives (the runs of one event loop commit
together every GROUP_COMMIT_SECONDS), so a killed process loses at most its last instant;
resuming the run calls again only what was not recorded. Traces are folded from the stored
events.

A store is checked when it is opened (`PRAGMA quick_check`). A damaged one is read as far as
it can be and never written again (writing into a damaged file can only make it worse); a
read-only one is read. Every SQLite failure reaches the caller as a one-line StoreError that
says what to do.

The parts: `file` (opening, connections), `migrations` (every table, in one ordered list),
`damage` (the quick check, read-only and damaged stores, failures in words), `runs`
(reading runs), `writer` (writing them), `group_commit`, `prompt_sets`, `capabilities`.
"""

from __future__ import annotations

from pdr_core.store.core import Store
from pdr_core.store.damage import BUSY_SECONDS
from pdr_core.store.errors import RunNotFound, StoreError
from pdr_core.store.file import APP_DIR, DB_NAME, default_db_path
from pdr_core.store.group_commit import CHECKPOINT_EVERY, GROUP_COMMIT_SECONDS
from pdr_core.store.migrations import MIGRATIONS, SCHEMA_VERSION
from pdr_core.store.runs import EVAL_TAG_PREFIX, QUESTION_PREVIEW, LiveFold, RunSummary
from pdr_core.store.writer import PARTIAL_FLUSH_SECONDS, RunWriter

__all__ = [
    "APP_DIR",
    "BUSY_SECONDS",
    "CHECKPOINT_EVERY",
    "DB_NAME",
    "EVAL_TAG_PREFIX",
    "GROUP_COMMIT_SECONDS",
    "LiveFold",
    "MIGRATIONS",
    "PARTIAL_FLUSH_SECONDS",
    "QUESTION_PREVIEW",
    "RunNotFound",
    "RunSummary",
    "RunWriter",
    "SCHEMA_VERSION",
    "Store",
    "StoreError",
    "default_db_path",
]
