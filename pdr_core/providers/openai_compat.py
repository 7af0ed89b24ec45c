"""The name this provider was first imported by; it lives in `pdr_core.providers.openai`."""

from __future__ import annotations

from pdr_core.providers.base import DEFAULT_MAX_IN_FLIGHT
from pdr_core.providers.openai import (
    ConnectionCheck,
    IndexedDeltaCallback,
    OpenAIProvider,
    is_reasoning_model,
)

__all__ = [
    "DEFAULT_MAX_IN_FLIGHT",
    "ConnectionCheck",
    "IndexedDeltaCallback",
    "OpenAIProvider",
    "is_reasoning_model",
]
