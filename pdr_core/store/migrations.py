"""The store's tables: one ordered list of migrations, applied once each, in order."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pdr_core.store.errors import StoreError
from pdr_core.store.sql import immediate

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
    # 5: evaluations and which run was made for which cell. Earlier versions made these
    # tables on first use, outside this list: IF NOT EXISTS keeps a store that has them.
    """
    CREATE TABLE IF NOT EXISTS eval_evaluations (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        spec TEXT NOT NULL,
        dataset_hash TEXT NOT NULL,
        problems TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS eval_attempts (
        eval_id TEXT NOT NULL REFERENCES eval_evaluations (id) ON DELETE CASCADE,
        run_id TEXT NOT NULL,
        problem_id TEXT NOT NULL,
        method TEXT NOT NULL,
        width INTEGER NOT NULL,
        depth INTEGER NOT NULL,
        max_tokens INTEGER NOT NULL,
        started_at TEXT NOT NULL,
        oracle INTEGER,
        decided_by TEXT,
        PRIMARY KEY (eval_id, run_id)
    )
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, path: Path, read_only: bool) -> None:
    """Bring the store at `path` to SCHEMA_VERSION; StoreError when it cannot be."""
    if read_only:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version < SCHEMA_VERSION:
            raise StoreError(
                f"run store {path} is read-only and needs its tables made or "
                f"upgraded (schema version {version} of {SCHEMA_VERSION}), which writes to "
                "it: open it once with write access, or use another store with --db PATH"
            )
        _check_version(path, version)
        return
    # The version is re-read inside the write lock: two processes opening a new file at
    # once must not both create the tables.
    with immediate(conn):
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        _check_version(path, version)
        for number in range(version, SCHEMA_VERSION):
            for statement in MIGRATIONS[number].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number + 1}")


def _check_version(path: Path, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} has schema version {version}, newer than this version of "
            f"PDR Inspector understands ({SCHEMA_VERSION}); upgrade the tool"
        )
