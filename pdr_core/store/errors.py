"""What a store operation that cannot be done raises."""

from __future__ import annotations


class StoreError(Exception):
    """A store operation that cannot be done; the message says why."""


class RunNotFound(StoreError, KeyError):
    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "run not found"

