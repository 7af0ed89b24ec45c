"""Run ids: made here, below both the methods that start runs and the store that imports them."""

from __future__ import annotations

import uuid


def new_run_id() -> str:
    """A fresh run id: 12 hex digits of a random UUID."""
    return uuid.uuid4().hex[:12]
