"""Named prompt sets; every save is a new version."""

from __future__ import annotations

import json

from pdr_core.events import now_iso
from pdr_core.prompts import PromptSet
from pdr_core.store.errors import StoreError
from pdr_core.store.file import StoreFile


class PromptSets(StoreFile):
    """The prompt sets kept in the store."""

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
