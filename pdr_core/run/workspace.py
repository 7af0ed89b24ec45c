"""The workspace bound: what reaches the next round is at most kappa tokens, counted by the
model's own tokenizer where the provider offers one, else by the estimate (and labelled so).

kappa bounds the workspace text, not the distiller's thinking: a summary call has its own
output budget, and its text is cut to kappa afterwards, the cut recorded on its node.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pdr_core.run.operators import Draft, draft_item
from pdr_core.run.scores import score_text
from pdr_core.tokens import CHARS_PER_TOKEN, estimate_tokens, truncate_to_chars
from pdr_core.trace import Node

# A counter takes text and returns its token count, or None when it cannot count.
Counter = Callable[[str], Awaitable[int | None]]
# Recounts a cut may take with an exact counter before it settles on a shorter text.
MAX_RECOUNTS = 8


@dataclass(frozen=True)
class Bounded:
    """A text bounded to kappa tokens, and what the bound took away."""

    text: str
    tokens: int  # tokens of `text`
    dropped: int  # tokens cut from the original
    exact: bool  # counted by the model's tokenizer; else estimated

    def info(self, kappa: int, keep_text: bool) -> dict[str, Any]:
        """The record a distill node keeps of its workspace (see `Node.workspace`); with
        `keep_text`, the text passed on when it differs from the node's own (a cut summary)."""
        info: dict[str, Any] = {"kappa": kappa, "tokens": self.tokens, "dropped": self.dropped,
                                "counted": "exact" if self.exact else "estimate"}
        if keep_text and self.dropped:
            info["text"] = self.text
        return info


def counter_of(provider: object) -> Counter | None:
    """The provider's optional `async count_tokens(text) -> int | None`, if it has one.

    Providers that can count exactly (a local model's tokenizer, an endpoint's tokenize
    route) define it; it must not download anything, and returns None when it cannot count.
    """
    count = getattr(provider, "count_tokens", None)
    return count if callable(count) else None


async def count_tokens(text: str, counter: Counter | None) -> tuple[int, bool]:
    """(tokens, exact): the counter's count where it gives one, else the estimate."""
    if counter is not None:
        counted = await counter(text)
        if counted is not None:
            return counted, True
    return estimate_tokens(text), False


async def bound(text: str, kappa: int, counter: Counter | None) -> Bounded:
    """`text` cut (head and tail kept) to at most `kappa` tokens by the counter used.

    With the estimate the bound is exact in estimated tokens: a real tokenizer may count
    more (LaTeX-heavy text runs about 3 characters a token, not 4). With an exact counter
    the cut is recounted, and shortened further until it fits.
    """
    tokens, exact = await count_tokens(text, counter)
    if tokens <= kappa:
        return Bounded(text, tokens, 0, exact)
    limit = kappa * CHARS_PER_TOKEN
    cut = truncate_to_chars(text, limit)
    counted, exact = await count_tokens(cut, counter)
    for _ in range(MAX_RECOUNTS):
        if counted <= kappa:
            break
        # Shrink in proportion to the overshoot, and by a little more, then recount.
        limit = max(min(limit - 1, int(limit * kappa / counted * 0.95)), 0)
        cut = truncate_to_chars(text, limit)
        counted, exact = await count_tokens(cut, counter)
    if counted > kappa:
        cut, counted = "", 0  # no cut fitted: pass nothing rather than break the bound
    return Bounded(cut, counted, max(tokens - counted, 0), exact)


async def extract(drafts: Sequence[Draft], kappa: int, counter: Counter | None
                  ) -> tuple[str, dict[str, Any]]:
    """An extractive workspace of `drafts` within kappa tokens, and its record.

    Each draft gets an equal share of kappa (after the labels) and is cut to it, head and
    tail kept; the record lists, per draft, the tokens kept and cut.
    """
    labels = [(await count_tokens(draft_item(i, d, ""), counter))[0]
              for i, d in enumerate(drafts)]
    share = max(1, (kappa - sum(labels)) // max(len(drafts), 1))
    items, rows = [], []
    for index, draft in enumerate(drafts):
        kept = await bound(draft.text, share, counter)
        items.append(draft_item(index, draft, kept.text))
        rows.append({"node_id": draft.node_id, "kept": kept.tokens, "cut": kept.dropped})
    # The shares and the joins between items are counted apart: bound the whole as well.
    whole = await bound("\n\n".join(items), kappa, counter)
    return whole.text, {**whole.info(kappa, keep_text=False), "drafts": rows}


def workspace_text(node: Node) -> str:
    """The workspace a distill node passed on: its bounded text where it was cut."""
    info = node.workspace or {}
    text = info.get("text")
    return text if isinstance(text, str) else node.text


def workspace_summary(node: Node) -> str:
    """One line on a distill node's workspace: its size against kappa, how it was counted,
    and its flags."""
    info = node.workspace or {}
    parts = []
    if isinstance(info.get("tokens"), int):
        counted = "counted by the model's tokenizer" if info.get("counted") == "exact" \
            else "estimated at 4 characters a token"
        parts.append(f"{info['tokens']:,} of kappa {info.get('kappa', '?')} tokens "
                     f"({counted})")
    cut = [f"{row['node_id']} kept {row['kept']:,}, cut {row['cut']:,}"
           for row in info.get("drafts") or [] if isinstance(row, dict)]
    if cut:
        parts.append("per draft: " + "; ".join(cut))
    ranking = info.get("ranking")
    if isinstance(ranking, dict) and isinstance(ranking.get("scores"), list):
        scored = [f"{row.get('node_id')} {score_text(row.get('score'))}"
                  for row in ranking["scores"] if isinstance(row, dict)]
        parts.append("selected by verify, best first: " + ", ".join(scored))
    parts.extend(workspace_flags(node))
    return "; ".join(parts) or "no record of its bound (a run saved before it was kept)"


def workspace_flags(node: Node) -> list[str]:
    """What a person must know about a distill node's workspace, as short sentences."""
    if node.stage != "distill" or node.status != "ok":
        return []
    flags = []
    info = node.workspace or {}
    if node.call and node.finish_reason == "length":
        flags.append("the summary stopped at its max-tokens limit (the distill budget): "
                     "it may end mid-thought")
    if node.call and not node.text.strip():
        spent = node.reasoning or int(node.usage.get("reasoning_tokens", 0) or 0)
        flags.append("the summary is empty" + (": the model spent its budget on reasoning "
                                               "text; raise the distill budget" if spent else ""))
    dropped = info.get("dropped")
    if isinstance(dropped, int) and dropped > 0:
        how = "" if info.get("counted") == "exact" else " (estimated)"
        flags.append(f"cut at kappa: {dropped:,} tokens dropped{how}")
    return flags
