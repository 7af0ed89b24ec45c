"""A store that must not be written: damaged (what SQLite's quick check finds) or read-only
for this user. Either is still read as far as it can be, and every SQLite failure becomes a
one-line StoreError that says what to do."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from pdr_core.store.errors import StoreError

# How long a writer waits for another to finish before giving up.
BUSY_SECONDS = 30


def quick_check(conn: sqlite3.Connection) -> str | None:
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


def connect_read_only(path: Path) -> sqlite3.Connection:
    """Read a store this process may not (or must not: it is damaged) write. A store in
    WAL mode needs its -shm file, which a read-only folder may lack: then the file is read
    as it is on disk (immutable), since no one here can be writing it. Raises the last
    SQLite error when neither way opens it."""
    uri = f"file:{quote(str(path.resolve()))}"
    failure: sqlite3.DatabaseError | None = None
    for mode in ("mode=ro", "immutable=1"):
        try:
            conn = sqlite3.connect(f"{uri}?{mode}", uri=True, timeout=BUSY_SECONDS,
                                   isolation_level=None, check_same_thread=False)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.DatabaseError as exc:
            failure = exc
    assert failure is not None
    raise failure


def refusal(path: Path, damage: str | None, read_only: bool) -> StoreError | None:
    """Why the store at `path` must not be written, saying what to do; None when it may."""
    if damage is not None:
        return StoreError(
            f"run store {path} is damaged ({damage}), so nothing is written to "
            f"it. Save what can be read (python -m pdr_core list --db {path}, then "
            f"export each run with --out), move the file aside, and start a new store "
            "there or with --db PATH"
        )
    if read_only:
        return StoreError(
            f"run store {path} is read-only for this user: runs can be listed, "
            "shown and exported, not saved. Make the file and its folder writable, or "
            "use another store with --db PATH or PDR_DB"
        )
    return None


@dataclass(frozen=True)
class Failure:
    """What an SQLite failure means: the error to raise, and what it shows of the file."""

    error: StoreError
    read_only: bool = False  # the file cannot be written
    damage: str | None = None  # the file is damaged, as SQLite said


def failure(path: Path, exc: sqlite3.DatabaseError) -> Failure:
    """A one-line StoreError for an SQLite failure, saying what to do."""
    text = " ".join(str(exc).split())
    if "locked" in text or "busy" in text:
        return Failure(StoreError(f"run store {path} is busy: another process kept it locked "
                                  f"for {BUSY_SECONDS} s; try again when it is done"))
    if "full" in text:
        return Failure(StoreError(f"the disk holding run store {path} is full ({text}): the "
                                  "last writes were not saved; free some space and try again"))
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return Failure(StoreError(f"run store {path} cannot be opened for writing ({text}): "
                                  "make the file and its folder readable and writable, or use "
                                  "another store with --db PATH or PDR_DB"), read_only=True)
    if "not a database" in text:
        return Failure(StoreError(
            f"cannot open run store {path}: {text}. Check that this is the right "
            "file; if it was a run store, it is damaged beyond reading: move it aside and "
            "start a new store there or with --db PATH"
        ), damage=text)
    return Failure(StoreError(
        f"run store {path} is damaged or not a run store ({text}). Save what can "
        "still be read (export each run with --out), move the file aside, and start a new "
        "store there or with --db PATH"
    ), damage=text)
