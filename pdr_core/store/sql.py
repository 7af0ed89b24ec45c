"""Small SQL helpers every part of the store uses."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

# One SQL statement and its parameters.
Statement = tuple[str, tuple]


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction: committed if the block ends normally, else rolled back."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def like_escape(text: str) -> str:
    """`text` matched literally by LIKE (its % and _ are not wildcards)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def tag_text(tags: tuple[str, ...]) -> str:
    """Tags as stored: comma-separated, no commas inside a tag."""
    return ",".join(t.strip().replace(",", " ") for t in tags if t.strip())

