"""Token estimates for budgets and bounds, used where no tokenizer is at hand."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

# Four characters a token is the usual rule of thumb for English and code.
CHARS_PER_TOKEN = 4
# Chat formats add a few tokens of framing per message.
MESSAGE_OVERHEAD = 4


def estimate_tokens(text: str) -> int:
    """Estimated token count of `text` (0 for the empty string)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def estimate_prompt_tokens(messages: Iterable[Mapping[str, str]]) -> int:
    """Estimated prompt tokens of a chat request."""
    return sum(estimate_tokens(m.get("content") or "") + MESSAGE_OVERHEAD for m in messages)


def truncate_to_tokens(text: str, max_tokens: int, marker: str = "\n[...]\n") -> str:
    """Shorten `text` to about `max_tokens`, keeping its head and its tail.

    The tail is kept because reasoning drafts state their answer at the end.
    """
    limit = max_tokens * CHARS_PER_TOKEN
    if len(text) <= limit:
        return text
    room = max(limit - len(marker), 0)
    head = room // 3
    tail = room - head
    return text[:head] + marker + (text[-tail:] if tail else "")
