"""The OpenAI-compatible endpoint provider, in parts: `provider` (the class), `sse` (reading a
reply), `usage` (its tokens), `errors` (what went wrong, in words), `admission` (requests in
flight, retry pacing), `clients` (one SDK client per event loop), `connection` (can this
endpoint be used?)."""

from __future__ import annotations

from pdr_core.providers.base import IndexedDeltaCallback
from pdr_core.providers.openai.connection import ConnectionCheck
from pdr_core.providers.openai.provider import OpenAIProvider, is_reasoning_model

__all__ = ["ConnectionCheck", "IndexedDeltaCallback", "OpenAIProvider", "is_reasoning_model"]
