"""What a reply amounts to: its choices as Completions, with the tokens each one used (as
the endpoint reported them, shared out between choices, or estimated when it said none)."""

from __future__ import annotations

from typing import Any

from pdr_core.providers.base import Completion, Usage
from pdr_core.providers.openai.errors import Errors
from pdr_core.providers.openai.sse import Choice, StreamState
from pdr_core.tokens import estimate_prompt_tokens, estimate_tokens


def completions(
    messages: list[dict],
    choices: dict[int, Choice],
    usage: dict[str, Any] | None,
    model: str,
    errors: Errors,
) -> list[Completion]:
    """The choices in index order, as Completions of `model` (the model the endpoint named
    in its reply, else the one asked for); ProviderError if a content filter stopped one."""
    ordered = [choices[i] for i in sorted(choices)]
    texts = ["".join(c.text) for c in ordered]
    thoughts = ["".join(c.reasoning) for c in ordered]
    for state, text in zip(ordered, texts, strict=True):
        if state.finish_reason == "content_filter":
            raise errors.content_filtered(len(text))
    usages = split_usage(messages, usage, texts, thoughts)
    return [
        Completion(
            text=text,
            usage=part,
            reasoning=thought,
            finish_reason=state.finish_reason,
            model=model,
        )
        for state, text, thought, part in zip(ordered, texts, thoughts, usages, strict=True)
    ]


def finished(messages: list[dict], stream: StreamState, n: int, model: str, errors: Errors
             ) -> list[Completion | None]:
    """The choices of a broken stream that did finish (None for the others)."""
    done = {i: c for i, c in stream.choices.items()
            if c.finish_reason not in (None, "content_filter") and 0 <= i < n}
    got = dict(zip(sorted(done), completions(messages, done, None, stream.model or model,
                                             errors), strict=True))
    return [got.get(i) for i in range(n)]


def split_usage(
    messages: list[dict], usage: dict[str, Any] | None, texts: list[str], thoughts: list[str]
) -> list[Usage]:
    """Per-choice usage: as reported for one choice, shared out by length for several."""
    prompt_estimate = estimate_prompt_tokens(messages)
    if usage is None:
        return [
            Usage(
                prompt_tokens=prompt_estimate,
                completion_tokens=estimate_tokens(text) + estimate_tokens(thought),
                reasoning_tokens=estimate_tokens(thought),
                estimated=True,
            )
            for text, thought in zip(texts, thoughts, strict=True)
        ]
    prompt = _int(usage.get("prompt_tokens"))
    completion = _int(usage.get("completion_tokens"))
    details = usage.get("completion_tokens_details")
    reasoning = _int(details.get("reasoning_tokens") if isinstance(details, dict) else None)
    if len(texts) == 1:
        return [Usage(prompt, completion, reasoning)]
    # One request, several choices: each choice read the whole prompt; the output tokens
    # are shared out in proportion to each choice's length, so they still add up.
    weights = [len(t) + len(r) or 1 for t, r in zip(texts, thoughts, strict=True)]
    thought_weights = [len(r) for r in thoughts]
    completion_shares = _apportion(completion, weights)
    reasonings = _apportion(reasoning, thought_weights if any(thought_weights) else weights)
    return [
        Usage(prompt, c, r, estimated=True)
        for c, r in zip(completion_shares, reasonings, strict=True)
    ]


def _apportion(total: int, weights: list[int]) -> list[int]:
    """`total` split in proportion to `weights`, as whole numbers that add up to `total`."""
    whole = sum(weights) or 1
    shares = [total * w // whole for w in weights]
    for i in range(total - sum(shares)):
        shares[i % len(shares)] += 1
    return shares


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0
