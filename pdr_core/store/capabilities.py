"""What endpoints were found to do (does it honour n?), per base URL and model: the store as
the providers' CapabilityMemory, so that every process knows what one learnt."""

from __future__ import annotations

import time

from pdr_core.providers.base import Known
from pdr_core.store.errors import StoreError
from pdr_core.store.file import StoreFile


class Capabilities(StoreFile):
    """A CapabilityMemory kept in the store's endpoint_capabilities table."""

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
