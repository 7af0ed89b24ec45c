"""Token estimates for budgets and bounds, used where no tokenizer is at hand.

An estimate, not a count: four characters a token holds for English prose and code, while
LaTeX-heavy text runs nearer three, so a real tokenizer may count a third more. Where a bound
matters (the workspace), `pdr_core.run.workspace` counts with the provider's tokenizer when it has
one and labels the estimate otherwise.
"""

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
    """Shorten `text` to at most `max_tokens` estimated tokens, keeping its head and tail."""
    return truncate_to_chars(text, max_tokens * CHARS_PER_TOKEN, marker)


def truncate_to_chars(text: str, limit: int, marker: str = "\n[...]\n") -> str:
    """Shorten `text` to at most `limit` characters, keeping its head and its tail.

    The tail is kept because reasoning drafts state their answer at the end.
    """
    if len(text) <= limit:
        return text
    if limit <= len(marker):
        return text[:limit]
    room = limit - len(marker)
    head = room // 3
    tail = room - head
    return text[:head] + marker + (text[-tail:] if tail else "")
