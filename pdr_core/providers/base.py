"""The provider seam: one async method that turns chat messages into a completion."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

Message = dict[str, str]
# How long one try of a call may take, and how many more tries a failed call gets, unless
# told otherwise: the OpenAI client's own defaults.
DEFAULT_TIMEOUT = 600.0
DEFAULT_MAX_RETRIES = 2
# Requests one event loop keeps open at once. One process streams a few hundred calls a
# second on two cores; beyond this many at once the loop stalls without any gain in calls per
# second (measured in bench/scale.py). A constructor argument, for bigger machines.
DEFAULT_MAX_IN_FLIGHT = 128
# Called with each piece of streamed text as it arrives.
DeltaCallback = Callable[[str], None]
# Called with (choice index, text) for each streamed piece of a multi-choice request.
IndexedDeltaCallback = Callable[[int, str], None]
# OpenAI's own API: where an OpenAI key belongs when no other endpoint is named.
DEFAULT_OPENAI_URL = "https://api.openai.com/v1"
# Local servers ignore the key, but the OpenAI client refuses to start without one.
PLACEHOLDER_KEY = "not-needed"


@dataclass(frozen=True)
class Sampling:
    """Per-call sampling settings the engine passes to a provider."""

    max_tokens: int
    temperature: float = 0.8
    seed: int | None = None
    reasoning_effort: str | None = None


@dataclass(frozen=True)
class Usage:
    """Tokens one call consumed. `estimated` is set when the endpoint reported none."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "estimated": self.estimated,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Usage:
        return cls(
            prompt_tokens=int(data.get("prompt_tokens", 0)),
            completion_tokens=int(data.get("completion_tokens", 0)),
            reasoning_tokens=int(data.get("reasoning_tokens", 0)),
            estimated=bool(data.get("estimated", False)),
        )


@dataclass(frozen=True)
class Completion:
    """What one call returned: answer text apart from any reasoning text."""

    text: str
    usage: Usage = field(default_factory=Usage)
    reasoning: str = ""
    finish_reason: str | None = None
    model: str | None = None


class ProviderError(Exception):
    """A call failed; the message says what a person can do about it.

    `kind` is a short machine-readable cause: auth, model_not_found, rate_limited,
    context_length, connection, timeout, protocol, server, bad_request, content_filter,
    cancelled, local_model_missing, crashed (the local model's worker process died), other.
    Messages never contain an API key.
    """

    def __init__(self, message: str, kind: str = "other", retryable: bool = False,
                 partial: list[Completion | None] | None = None,
                 causes: dict[int, ProviderError] | None = None,
                 retry_after: float | None = None):
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable
        # For a multi-choice call: the choices that did come back (None where one failed),
        # and why each missing one failed, by choice index.
        self.partial = partial
        self.causes = causes or {}
        # Seconds the server asked to wait before trying again (Retry-After), if it said.
        self.retry_after = retry_after


def check_base_url(url: str) -> str:
    """`url` without its trailing slash; ProviderError if it has no http(s) scheme or host."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProviderError(
            f"Base URL {url!r} is not a valid URL: it needs a scheme and a host, "
            f"e.g. http://127.0.0.1:8080/v1 or {DEFAULT_OPENAI_URL}.",
            kind="bad_request",
        )
    return url


@runtime_checkable
class Provider(Protocol):
    """Anything that can complete a chat. Implementations must be safe to call concurrently."""

    @property
    def model(self) -> str: ...

    @property
    def base_url(self) -> str: ...

    async def complete(
        self,
        messages: Sequence[Message],
        sampling: Sampling,
        on_delta: DeltaCallback | None = None,
    ) -> Completion:
        """Complete `messages`, streaming text to `on_delta`; raise ProviderError on failure."""
        ...


@runtime_checkable
class CountsTokens(Protocol):
    """Optional: a provider that can count tokens as its model does (a local tokenizer, an
    endpoint's tokenize route) offers this, and workspaces are bounded by its count rather
    than the estimate. It must not download anything; None means it cannot count now."""

    async def count_tokens(self, text: str) -> int | None: ...


@runtime_checkable
class CompletesN(Protocol):
    """Optional: a provider that can make `n` completions of the same messages in one request
    (one prefill instead of n) offers this, and identical calls are batched through it.
    `supports_n` is False once the endpoint is known to ignore `n` (then the engine makes
    separate calls, which fail separately), None while unknown."""

    @property
    def supports_n(self) -> bool | None: ...

    async def complete_n(
        self,
        messages: Sequence[Message],
        sampling: Sampling,
        n: int,
        on_delta: IndexedDeltaCallback | None = None,
        max_parallel: int | None = None,
    ) -> list[Completion]:
        """`n` completions, choice i streaming to `on_delta(i, text)`, at most `max_parallel`
        requests at once; ProviderError with `partial` and `causes` if some failed."""
        ...


@dataclass(frozen=True)
class Known:
    """What a capability memory holds about one endpoint: the value and its age in seconds."""

    value: bool
    age: float


@runtime_checkable
class CapabilityMemory(Protocol):
    """What endpoints were found to do, per base URL and model, kept across processes (the
    run store is one). `remember` never raises: a memory that cannot write forgets."""

    def recall(self, base_url: str, model: str, name: str) -> Known | None: ...

    def remember(self, base_url: str, model: str, name: str, value: bool) -> None: ...


@runtime_checkable
class Settles(Protocol):
    """Optional: a provider that learns about its endpoint in the background (does it honour
    `n`?) offers this; awaited before its event loop ends, so what it learns is kept for the
    next process. No run waits on it."""

    async def settle(self, timeout: float = 5.0) -> None: ...


async def settle(provider: object) -> None:
    """Let `provider` finish what it is learning in the background, if it learns any: the
    last thing on an event loop that ran calls through it."""
    if isinstance(provider, Settles):
        await provider.settle()
