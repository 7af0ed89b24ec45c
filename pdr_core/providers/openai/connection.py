"""Whether an endpoint can be used, in words: reached, serving the model, taking the key."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pdr_core.providers.base import ProviderError, Sampling, Usage
from pdr_core.providers.n_support import PROBE_MESSAGES
from pdr_core.providers.openai.errors import listing_text

if TYPE_CHECKING:
    from pdr_core.providers.openai.provider import OpenAIProvider


@dataclass(frozen=True)
class ConnectionCheck:
    """The outcome of `OpenAIProvider.check_connection`."""

    ok: bool
    message: str
    models: tuple[str, ...] = ()
    latency_s: float | None = None
    usage: Usage | None = None  # the test call's tokens, when one was made


async def check_connection(provider: OpenAIProvider) -> ConnectionCheck:
    """Reach the endpoint and say, in words, whether the provider's model can be used.

    With a model named, one call of one output token proves that the key is accepted:
    many servers list their models to anyone. Its cost is in `usage`."""
    url, model = provider.base_url, provider.model
    start = time.monotonic()
    try:
        served = tuple(await provider.list_models())
    except ProviderError as error:
        if error.kind != "bad_request" or not model:
            return ConnectionCheck(False, str(error), (), time.monotonic() - start)
        served = ()  # some servers do not list models; the call below tells
    if not model:
        latency = time.monotonic() - start
        return ConnectionCheck(
            bool(served),
            f"Reached {url} in {latency:.2f} s (no key checked: name a model "
            "to test one call). "
            + (f"Pick a model: it serves {listing_text(served)}." if served
               else "It lists no models; type the model name."),
            served, latency)
    if served and model not in served:
        return ConnectionCheck(
            False,
            f"Connected to {url}, but it does not serve model {model!r}. "
            f"It serves: {listing_text(served)}. Pick one of those.",
            served, time.monotonic() - start)
    try:
        reply = await provider.complete(list(PROBE_MESSAGES),
                                        Sampling(max_tokens=1, temperature=0.0))
    except ProviderError as error:
        return ConnectionCheck(False, f"The test call failed: {error}", served,
                               time.monotonic() - start)
    latency = time.monotonic() - start
    usage = reply.usage
    return ConnectionCheck(
        True,
        f"Connected to {url}: model {model!r} answered a one-token test "
        f"call in {latency:.2f} s, so the key works. That call cost "
        f"{usage.prompt_tokens} input + {usage.completion_tokens} output tokens.",
        served, latency, usage)
