"""OpenAIProvider: any OpenAI-compatible chat endpoint through the official `openai` client.

OpenAI itself, vLLM, llama.cpp's server, Ollama, LM Studio, OpenRouter and friends all speak
`POST /v1/chat/completions`. This provider streams from it, keeps reasoning text apart from
the answer, reads token usage (or estimates it when the endpoint reports none), and turns
every SDK error into a `ProviderError` whose message says what a person can do about it.

Retries are the provider's own, not the SDK's: a 5xx, a 429 (honouring Retry-After), a
dropped connection, and also a malformed or truncated 200 reply (which the SDK never sees
as a failure) are each tried again up to `max_retries` times, with exponential backoff from
`retry_backoff` seconds. A shared request for `n` answers that breaks after its answers began
is not tried again as a whole: the answers it did finish are kept and only the missing ones
are asked for, each as its own call with its own retries.
One `AsyncOpenAI` client is kept per running event loop, because an httpx client created in
one loop breaks when used from another (Streamlit runs each job in a fresh loop).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import re
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx2  # the transport of openai 3.x; its exceptions say whether a connection was made
import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion

from pdr_core.providers.base import (
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    CapabilityMemory,
    Completion,
    DeltaCallback,
    Message,
    ProviderError,
    Sampling,
    Usage,
    check_base_url,
)
from pdr_core.providers.n_support import PROBE_MESSAGES, NSupport
from pdr_core.tokens import estimate_prompt_tokens, estimate_tokens

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_IN_FLIGHT",
    "ConnectionCheck",
    "IndexedDeltaCallback",
    "OpenAIProvider",
    "is_reasoning_model",
]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Requests opened per turn of the event loop, at most: opening one (building it, taking a
# connection, writing it) costs about a millisecond of CPU, so a wave of hundreds opened in one
# turn would stall the loop for hundreds of milliseconds. Four keep a turn short and still
# open thousands a second.
_OPENED_PER_TURN = 4
# Called with (choice index, text) for each streamed piece of a multi-choice request.
IndexedDeltaCallback = Callable[[int, str], None]
# Backoff between tries: doubles from retry_backoff up to this many seconds. A Retry-After
# the server sends is waited for instead, up to _MAX_RETRY_AFTER (longer ones are backed off).
_MAX_BACKOFF = 8.0
_MAX_RETRY_AFTER = 60.0
_T = TypeVar("_T")

# Model families that take max_completion_tokens and refuse temperature / seed / top_p.
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")
# Local servers ignore the key, but the SDK refuses to start without one.
_PLACEHOLDER_KEY = "not-needed"
# Where DeepSeek, vLLM, llama.cpp (reasoning_content) and OpenRouter, Ollama (reasoning)
# put thinking text; the SDK's models keep such unknown fields in `model_extra`.
_REASONING_FIELDS = ("reasoning_content", "reasoning")
_CONTEXT_PHRASES = (
    "context length",
    "context_length",
    "maximum context",
    "context window",
    "available context",
    "context size",
    "too many tokens",
    "prompt is too long",
    "input is too long",
)
# A masked key as servers echo it ("sk-ab****wxyz") or anything that looks like a key.
_KEYLIKE = re.compile(r"\S*\*{3,}\S*|\b(?:sk|pk|rk|key)-[A-Za-z0-9_\-]{6,}")


def is_reasoning_model(model: str) -> bool:
    """True for OpenAI reasoning model names (o1, o3, o4, gpt-5 families), any vendor prefix."""
    name = model.rsplit("/", 1)[-1].lower()
    return name.startswith(_REASONING_PREFIXES)


@dataclass(frozen=True)
class ConnectionCheck:
    """The outcome of `OpenAIProvider.check_connection`."""

    ok: bool
    message: str
    models: tuple[str, ...] = ()
    latency_s: float | None = None
    usage: Usage | None = None  # the test call's tokens, when one was made


@dataclass
class _Choice:
    """One choice's stream, collected piece by piece."""

    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    finish_reason: str | None = None


@dataclass(frozen=True)
class _LoopClient:
    """What the provider keeps per event loop."""

    client: AsyncOpenAI
    guard: asyncio.Task  # closes the client when the loop ends
    slots: _Admission  # requests in flight, at most max_in_flight


class _Admission:
    """Admits requests: at most `limit` open at once, at most `per_turn` opened per loop turn.

    Opening a request (building it, taking a connection, writing it) is the costly step of a
    call; a wave of hundreds opened in one turn of the event loop stalls it for as long.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int, per_turn: int):
        self._loop = loop
        self._open = asyncio.Semaphore(limit)
        self._per_turn = per_turn
        self._opened = 0  # in this turn of the loop

    async def __aenter__(self) -> None:
        await self._open.acquire()
        try:
            while self._opened >= self._per_turn:
                await asyncio.sleep(0)  # the next turn; _new_turn, scheduled first, runs first
        except BaseException:  # cancelled while waiting for its turn: give the slot back
            self._open.release()
            raise
        if self._opened == 0:
            self._loop.call_soon(self._new_turn)
        self._opened += 1

    async def __aexit__(self, *exc_info: object) -> None:
        self._open.release()

    def _new_turn(self) -> None:
        self._opened = 0


@dataclass
class _StreamState:
    """A streamed response as read so far."""

    on_delta: IndexedDeltaCallback | None
    retries: int = 0  # tries before this one, for the messages
    choices: dict[int, _Choice] = field(default_factory=dict)
    usage: dict[str, Any] | None = None
    model: str | None = None
    events: int = 0
    done: bool = False  # [DONE] seen


def _extra_text(obj: object, *names: str) -> str:
    """A string field the SDK's models do not declare (kept in pydantic's model_extra)."""
    extra = getattr(obj, "model_extra", None) or {}
    for name in names:
        value = extra.get(name, getattr(obj, name, None))
        if isinstance(value, str) and value:
            return value
    return ""


def _text_field(obj: dict[str, Any], names: Sequence[str]) -> str:
    """The first of `names` that holds a non-empty string in `obj`."""
    for name in names:
        value = obj.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def _data_field(line: bytes) -> bytes | None:
    """The value of a server-sent event's `data:` line (None for any other line)."""
    if not line.startswith(b"data:"):
        return None
    return line[6:] if line.startswith(b"data: ") else line[5:]


async def _sse_data(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The data of each server-sent event in a byte stream (comments and event names skipped).

    Lines end in LF or CRLF; a blank line ends an event; an event's data lines are joined
    with LF. A last event without its blank line still counts, as the SDK's decoder has it.
    """
    buffer = b""
    data: list[bytes] = []
    async for chunk in chunks:
        buffer += chunk
        if b"\n" not in chunk:
            continue
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if data:
                    yield b"\n".join(data)
                    data = []
            elif (value := _data_field(line)) is not None:
                data.append(value)
    if (value := _data_field(buffer.rstrip(b"\r"))) is not None:
        data.append(value)
    if data:
        yield b"\n".join(data)


def _normalise_base_url(base_url: str | None) -> str:
    return check_base_url(base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL)


class OpenAIProvider:
    """A Provider for any OpenAI-compatible chat completions endpoint.

    Safe to call concurrently, and from several event loops: each loop gets its own SDK
    client, plus one idle task that closes that client's connections when asyncio.run (or
    asyncio.Runner) cancels the loop's leftover tasks at its end. A loop closed some other way
    should `await provider.aclose()` first. `stream=False` uses plain JSON responses, for
    endpoints whose streaming is broken.

    `max_in_flight` caps the requests one event loop has open at once, across every run
    sharing the provider (an evaluation runs hundreds at once). Past what the process can
    stream, more calls in flight do not add throughput; they starve the event loop instead
    (BENCHMARKS.md, scale).

    `max_retries` more tries follow a call that failed for a reason that may pass (5xx, 429,
    a dropped or cut connection, a timeout, a malformed or truncated reply), after
    `retry_backoff` seconds, doubling each time (or what Retry-After asks).

    `memory` keeps what the endpoint was found to do (whether it honours `n`) for every
    provider of the same base URL and model, in this process and others (the run store).
    """

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        model: str,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        reasoning_effort: str | None = None,
        *,
        stream: bool = True,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        retry_backoff: float = 0.5,
        memory: CapabilityMemory | None = None,
    ):
        if timeout <= 0:
            raise ProviderError(
                f"Timeout must be positive seconds, not {timeout!r}.", kind="bad_request"
            )
        if max_retries < 0:
            raise ProviderError(
                f"max_retries must be 0 or more, not {max_retries!r}.", kind="bad_request"
            )
        if not retry_backoff >= 0:
            raise ProviderError(
                f"retry_backoff must be 0 or more seconds, not {retry_backoff!r}.",
                kind="bad_request",
            )
        if max_in_flight < 1:
            raise ProviderError(
                f"max_in_flight must be 1 or more, not {max_in_flight!r}.", kind="bad_request"
            )
        self._base_url = _normalise_base_url(base_url)
        # Never OPENAI_API_KEY by default: which key may go to which endpoint is
        # choose_endpoint's rule (pdr_core.providers.endpoints), not the client's.
        self._api_key = api_key or _PLACEHOLDER_KEY
        # May be empty: list_models and check_connection still work, to help pick one.
        self._model = (model or "").strip()
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.reasoning_effort = reasoning_effort
        self.stream = stream
        self.max_in_flight = max_in_flight
        self.retry_backoff = float(retry_backoff)
        self._jitter = random.Random()
        # Per event loop: its client, the task that closes the client when the loop ends, and
        # the slots of its requests in flight.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClient] = (
            weakref.WeakKeyDictionary()
        )
        self._clients_lock = threading.Lock()
        # Learnt about the endpoint as calls go: does it take stream_options, does it honour n.
        self._stream_options_ok = True
        self._n = NSupport(self._base_url, self._model, memory)

    def __repr__(self) -> str:
        # Never the key.
        return f"OpenAIProvider(base_url={self._base_url!r}, model={self._model!r})"

    @property
    def model(self) -> str:
        return self._model

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def supports_n(self) -> bool | None:
        """Whether the endpoint honours `n`, as remembered or learnt; None while unknown."""
        return self._n.value

    # ----- the SDK client, one per event loop ---------------------------------------------

    def _client(self) -> AsyncOpenAI:
        return self._loop_client().client

    def _loop_client(self) -> _LoopClient:
        loop = asyncio.get_running_loop()
        with self._clients_lock:
            entry = self._clients.get(loop)
            if entry is None:
                # Clients of finished loops can never be used again; let them go.
                for old in [old for old in self._clients if old.is_closed()]:
                    del self._clients[old]
                client = AsyncOpenAI(
                    api_key=self._api_key,
                    base_url=self._base_url,
                    timeout=self.timeout,
                    max_retries=0,  # retried here, with the replies the SDK cannot judge
                )
                guard = loop.create_task(self._close_at_loop_end(loop, client))
                slots = _Admission(loop, self.max_in_flight, _OPENED_PER_TURN)
                entry = self._clients[loop] = _LoopClient(client, guard, slots)
            return entry

    async def _close_at_loop_end(
        self, loop: asyncio.AbstractEventLoop, client: AsyncOpenAI
    ) -> None:
        """Wait until cancelled, then close `client`'s connections.

        asyncio.run cancels every task still pending when its main coroutine ends, so a
        loop's keep-alive connections are closed inside that loop instead of leaking.
        """
        try:
            await loop.create_future()
        finally:
            with self._clients_lock:
                entry = self._clients.get(loop)
                if entry is not None and entry.client is client:
                    del self._clients[loop]
            await client.close()

    async def aclose(self) -> None:
        """Close the connections this event loop's client holds (the loop's end also does)."""
        with self._clients_lock:
            entry = self._clients.get(asyncio.get_running_loop())
        if entry is not None:
            guard = entry.guard
            guard.cancel()
            await asyncio.wait([guard])
            if not guard.cancelled() and guard.exception() is not None:
                raise guard.exception()

    # ----- the Provider protocol ----------------------------------------------------------

    async def complete(
        self,
        messages: Sequence[Message],
        sampling: Sampling,
        on_delta: DeltaCallback | None = None,
    ) -> Completion:
        """Complete `messages`, streaming text to `on_delta`; raise ProviderError on failure."""
        callback = None if on_delta is None else (lambda _index, text: on_delta(text))
        results = await self._request(messages, sampling, 1, callback)
        return results[0]

    async def complete_n(
        self,
        messages: Sequence[Message],
        sampling: Sampling,
        n: int,
        on_delta: IndexedDeltaCallback | None = None,
        max_parallel: int | None = None,
    ) -> list[Completion]:
        """`n` completions of the same messages, in one request where the endpoint honours `n`.

        Choice i uses seed `sampling.seed + i`. Until the endpoint is known to honour `n`
        (llama.cpp and Ollama do not), the choices are concurrent single calls, at most
        `max_parallel` at once, and a small request beside them learns it (`n_support`). A
        shared request that fails for a reason that may pass, or comes back short, costs
        only its missing answers: each is asked for as a single call. ProviderError, with
        `partial` and per-choice `causes`, if some still failed.
        """
        if n < 1:
            raise ValueError(f"n must be at least 1, not {n}")
        got: dict[int, Completion] = {}
        if n > 1 and self._n.value is True:
            try:
                shared = (await self._request(messages, sampling, n, on_delta))[:n]
            except ProviderError as error:
                if not error.retryable:
                    raise  # auth, a bad request, a context too long: single calls fail alike
                got = {i: c for i, c in enumerate(error.partial or []) if c is not None}
            else:
                self._n.learn(len(shared) >= n)
                got = dict(enumerate(shared))
        missing = [i for i in range(n) if i not in got]
        if not missing:
            return [got[i] for i in range(n)]

        limit = asyncio.Semaphore(max_parallel or n)

        async def single(index: int) -> Completion:
            seed = None if sampling.seed is None else sampling.seed + index
            callback = None if on_delta is None else (lambda text: on_delta(index, text))
            async with limit:
                return await self.complete(messages, replace(sampling, seed=seed), callback)

        # The calls take their slots first: the probe, if any, queues behind them.
        calls = asyncio.gather(*(single(i) for i in missing), return_exceptions=True)
        if n > 1 and self._n.wants_probe():
            self._n.start_probe(self._choices_of_n2, limit)
        rest = await calls
        causes: dict[int, ProviderError] = {}
        for index, result in zip(missing, rest, strict=True):
            if isinstance(result, ProviderError):
                causes[index] = result
            elif isinstance(result, BaseException):
                raise result
            else:
                got[index] = result
        if causes:
            # Separate calls fail separately: keep the choices that did come back.
            first = causes[min(causes)]
            partial = [got.get(i) for i in range(n)]
            raise ProviderError(str(first), first.kind, first.retryable, partial=partial,
                                causes=causes)
        return [got[i] for i in range(n)]

    async def settle(self, timeout: float = 5.0) -> None:
        """Before the event loop ends: let the request learning whether the endpoint honours
        `n` (if one is in flight) answer, so that the memory keeps it. No run waits on it."""
        await self._n.settle(timeout)

    async def _choices_of_n2(self) -> int:
        """How many choices a one-token request for two comes back with."""
        replies = await self._request(PROBE_MESSAGES, Sampling(max_tokens=1, temperature=0.0),
                                      2, None)
        return len(replies)

    async def list_models(self) -> list[str]:
        """The model ids the endpoint serves (`GET /models`)."""
        client = self._client()

        async def attempt(retries: int) -> Any:
            try:
                return await client.models.list()
            except openai.OpenAIError as error:
                raise await self._translate(error, listing=True, retries=retries) from error
            except json.JSONDecodeError as error:
                raise self._protocol("the model list is not valid JSON") from error

        page = await self._retrying(attempt)
        data = getattr(page, "data", None)
        if not isinstance(data, list):
            raise self._protocol(f"the model list has no 'data' array ({_preview(page)})")
        return [m.id for m in data if isinstance(getattr(m, "id", None), str)]

    async def check_connection(self) -> ConnectionCheck:
        """Reach the endpoint and say, in words, whether this provider's model can be used.

        With a model named, one call of one output token proves that the key is accepted:
        many servers list their models to anyone. Its cost is in `usage`."""
        start = time.monotonic()
        try:
            served = tuple(await self.list_models())
        except ProviderError as error:
            if error.kind != "bad_request" or not self._model:
                return ConnectionCheck(False, str(error), (), time.monotonic() - start)
            served = ()  # some servers do not list models; the call below tells
        if not self._model:
            latency = time.monotonic() - start
            return ConnectionCheck(
                bool(served),
                f"Reached {self._base_url} in {latency:.2f} s (no key checked: name a model "
                "to test one call). "
                + (f"Pick a model: it serves {_listing(served)}." if served
                   else "It lists no models; type the model name."),
                served, latency)
        if served and self._model not in served:
            return ConnectionCheck(
                False,
                f"Connected to {self._base_url}, but it does not serve model {self._model!r}. "
                f"It serves: {_listing(served)}. Pick one of those.",
                served, time.monotonic() - start)
        try:
            reply = await self.complete([{"role": "user", "content": "Say OK."}],
                                        Sampling(max_tokens=1, temperature=0.0))
        except ProviderError as error:
            return ConnectionCheck(False, f"The test call failed: {error}", served,
                                   time.monotonic() - start)
        latency = time.monotonic() - start
        usage = reply.usage
        return ConnectionCheck(
            True,
            f"Connected to {self._base_url}: model {self._model!r} answered a one-token test "
            f"call in {latency:.2f} s, so the key works. That call cost "
            f"{usage.prompt_tokens} input + {usage.completion_tokens} output tokens.",
            served, latency, usage)

    # ----- requests -----------------------------------------------------------------------

    def _params(self, sampling: Sampling, n: int) -> dict[str, Any]:
        effort = sampling.reasoning_effort or self.reasoning_effort
        params: dict[str, Any] = {}
        if effort or is_reasoning_model(self._model):
            # Reasoning models reject max_tokens, temperature, seed and top_p.
            params["max_completion_tokens"] = sampling.max_tokens
            if effort:
                params["reasoning_effort"] = effort
        else:
            params["max_tokens"] = sampling.max_tokens
            params["temperature"] = sampling.temperature
            if sampling.seed is not None:
                params["seed"] = sampling.seed
        if n > 1:
            params["n"] = n
        return params

    async def _request(
        self,
        messages: Sequence[Message],
        sampling: Sampling,
        n: int,
        on_delta: IndexedDeltaCallback | None,
    ) -> list[Completion]:
        if not self._model:
            raise self._error(
                f"No model name given for {self._base_url}: choose one of the models it serves "
                "(check_connection lists them).",
                kind="bad_request",
            )
        entry = self._loop_client()

        async def attempt(retries: int) -> list[Completion]:
            # The slot is held for the request only, never while waiting to retry.
            async with entry.slots:
                return await self._send(entry.client, messages, sampling, n, on_delta, retries)

        return await self._retrying(attempt)

    async def _retrying(self, attempt: Callable[[int], Awaitable[_T]]) -> _T:
        """`attempt(retries so far)`, tried again while it fails for a reason that may pass.

        A shared request whose answers had begun (its error carries `partial`) is not tried
        again as a whole: `complete_n` asks for its missing answers one by one.
        """
        for retries in itertools.count():
            try:
                return await attempt(retries)
            except ProviderError as error:
                if not error.retryable or error.partial is not None or retries >= self.max_retries:
                    raise
                await asyncio.sleep(self._backoff(retries, error.retry_after))
        raise AssertionError("unreachable")  # itertools.count() never ends

    def _backoff(self, retries: int, retry_after: float | None) -> float:
        """Seconds to wait before the next try: what the server asked, else a jittered
        exponential backoff (jitter keeps many failed calls from retrying all at once)."""
        if retry_after is not None and 0 <= retry_after <= _MAX_RETRY_AFTER:
            return retry_after
        delay = min(self.retry_backoff * 2**retries, _MAX_BACKOFF)
        return delay * (1 - 0.25 * self._jitter.random())

    async def _send(
        self,
        client: AsyncOpenAI,
        messages: Sequence[Message],
        sampling: Sampling,
        n: int,
        on_delta: IndexedDeltaCallback | None,
        retries: int,
    ) -> list[Completion]:
        params = self._params(sampling, n)
        chat = [dict(m) for m in messages]
        stream = _StreamState(on_delta, retries)
        try:
            return await self._send_once(client, chat, params, stream)
        except ProviderError as error:
            if n > 1 and stream.events:
                # A shared request broke after its answers began: keep those that finished.
                error.partial = self._finished(chat, stream, n)
            raise

    async def _send_once(
        self, client: AsyncOpenAI, chat: list[dict], params: dict[str, Any], stream: _StreamState
    ) -> list[Completion]:
        try:
            if not self.stream:
                return await self._create(client, chat, params, stream.on_delta)
            try:
                return await self._stream(client, chat, params, stream, self._stream_options_ok)
            except (openai.BadRequestError, openai.UnprocessableEntityError) as error:
                if not (self._stream_options_ok and _mentions(error, "stream_options")):
                    raise
                # This endpoint refuses stream_options; stop sending it and estimate usage.
                self._stream_options_ok = False
                return await self._stream(client, chat, params, stream, False)
        except openai.OpenAIError as error:
            raise await self._translate(error, retries=stream.retries) from error
        except json.JSONDecodeError as error:
            # A reply cut or garbled on the way: worth another try, like a 5xx.
            raise self._protocol(f"the response is not valid JSON ({error})",
                                 stream.retries) from error

    def _finished(self, messages: list[dict], stream: _StreamState, n: int
                  ) -> list[Completion | None]:
        """The choices of a broken stream that did finish (None for the others)."""
        done = {i: c for i, c in stream.choices.items()
                if c.finish_reason not in (None, "content_filter") and 0 <= i < n}
        completions = dict(zip(sorted(done), self._finish(messages, done, None, stream.model),
                               strict=True))
        return [completions.get(i) for i in range(n)]

    async def _create(
        self,
        client: AsyncOpenAI,
        messages: list[dict],
        params: dict[str, Any],
        on_delta: IndexedDeltaCallback | None,
    ) -> list[Completion]:
        response = await client.chat.completions.create(
            model=self._model, messages=messages, **params
        )
        if not isinstance(response, ChatCompletion):
            raise self._protocol(f"expected a JSON chat completion, got {_preview(response)}")
        if not response.choices:
            extra = response.model_extra or {}
            if isinstance(extra.get("error"), dict):
                # Some servers answer 200 with an error object instead of an error status.
                said = " ".join(str(extra["error"].get("message", extra["error"])).split())
                raise self._error(
                    f"{self._base_url} returned an error: {said[:300]}", kind="server",
                    retryable=True,
                )
            keys = sorted(response.model_fields_set | set(extra))
            raise self._protocol(f"the JSON has no 'choices' (it has: {', '.join(keys) or '-'})")
        choices: dict[int, _Choice] = {}
        for position, choice in enumerate(response.choices):
            message = getattr(choice, "message", None)
            if message is None:
                raise self._protocol("a choice has no 'message'")
            index = choice.index if isinstance(choice.index, int) else position
            text = message.content or ""
            choices[index] = _Choice(
                [text], [_extra_text(message, *_REASONING_FIELDS)], choice.finish_reason
            )
            if on_delta is not None and text:
                on_delta(index, text)
        usage = None if response.usage is None else response.usage.model_dump()
        return self._finish(messages, choices, usage, response.model)

    async def _stream(
        self,
        client: AsyncOpenAI,
        messages: list[dict],
        params: dict[str, Any],
        stream: _StreamState,
        include_usage: bool,
    ) -> list[Completion]:
        extra = {"stream_options": {"include_usage": True}} if include_usage else {}
        # The SDK still builds, sends and retries the request and raises its status errors;
        # the event stream is read here, as plain JSON. Building the SDK's chunk models cost
        # more CPU than the HTTP itself, and that cost capped how many calls one process
        # could stream at once (BENCHMARKS.md, scale).
        async with client.chat.completions.with_streaming_response.create(
            model=self._model, messages=messages, stream=True, **params, **extra
        ) as response:
            try:
                async for data in _sse_data(response.iter_bytes()):
                    if stream.done:
                        continue  # read to the end, so that the connection can be reused
                    if data.startswith(b"[DONE]"):
                        stream.done = True
                        continue
                    self._read_chunk(stream, data, response.http_response.request)
            except httpx2.TimeoutException as error:
                raise self._error(
                    f"The stream from {self._base_url} stalled: no data for {self.timeout:g} "
                    f"s, {stream.events} chunk(s) in{self._retries(stream.retries)}. The "
                    "server may be overloaded; retry, or raise the timeout (PDR_TIMEOUT, or "
                    "--timeout on the command line).",
                    kind="timeout",
                    retryable=True,
                ) from error
            except httpx2.TransportError as error:
                raise self._cut(stream, _cause(error)) from error
            content_type = response.headers.get("content-type", "")
        if not stream.choices:
            if "event-stream" not in content_type:
                raise self._protocol(
                    f"asked for a stream, got {content_type or 'no content type'} "
                    f"instead of text/event-stream"
                )
            # A 200 with nothing in it: truncated on the way, worth another try.
            raise self._protocol("the stream carried no choices", stream.retries)
        if any(state.finish_reason is None for state in stream.choices.values()):
            raise self._cut(stream, "the stream ended without a finish_reason")
        return self._finish(messages, stream.choices, stream.usage, stream.model)

    def _read_chunk(self, stream: _StreamState, data: bytes, request: httpx2.Request) -> None:
        """Fold one stream event (a chat.completion.chunk, as JSON) into `stream`."""
        try:
            chunk = json.loads(data)
        except ValueError as error:  # JSONDecodeError, or bytes that are not UTF-8
            raise self._protocol(
                f"stream event {stream.events + 1} is not valid JSON "
                f"({getattr(error, 'msg', error)})",
                stream.retries,
            ) from error
        if not isinstance(chunk, dict):
            raise self._protocol(f"a stream event is not a chunk: {_preview(chunk)}")
        error = chunk.get("error")
        if error:
            # An error event after a 200; the SDK's own error type, translated like the rest.
            said = error.get("message") if isinstance(error, dict) else None
            raise openai.APIError(
                said if isinstance(said, str) and said else "An error occurred during streaming",
                request,
                body=error,
            )
        stream.events += 1
        model = chunk.get("model")
        if isinstance(model, str) and model:
            stream.model = model
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            stream.usage = usage  # vLLM can report it on every chunk; keep the last
        choices = chunk.get("choices") or []
        if not isinstance(choices, list):
            raise self._protocol(f"a chunk's 'choices' is not a list: {_preview(choices)}")
        for choice in choices:
            if not isinstance(choice, dict):
                raise self._protocol(f"a chunk's choice is not an object: {_preview(choice)}")
            index = choice.get("index")
            index = index if isinstance(index, int) else 0
            state = stream.choices.get(index)
            if state is None:
                state = stream.choices[index] = _Choice()
            delta = choice.get("delta")
            if isinstance(delta, dict):
                thought = _text_field(delta, _REASONING_FIELDS)
                if thought:
                    state.reasoning.append(thought)
                content = delta.get("content")
                if isinstance(content, str) and content:
                    state.text.append(content)
                    if stream.on_delta is not None:
                        stream.on_delta(index, content)
            finish = choice.get("finish_reason")
            if isinstance(finish, str) and finish:
                state.finish_reason = finish

    def _finish(
        self,
        messages: list[dict],
        choices: dict[int, _Choice],
        usage: dict[str, Any] | None,
        model: str | None,
    ) -> list[Completion]:
        ordered = [choices[i] for i in sorted(choices)]
        texts = ["".join(c.text) for c in ordered]
        thoughts = ["".join(c.reasoning) for c in ordered]
        for state, text in zip(ordered, texts, strict=True):
            if state.finish_reason == "content_filter":
                raise ProviderError(
                    f"The endpoint's content filter stopped the answer of model {self._model!r} "
                    f"(finish_reason 'content_filter') after {len(text)} characters. Rephrase "
                    "the question or the prompt templates.",
                    kind="content_filter",
                )
        usages = _split_usage(messages, usage, texts, thoughts)
        return [
            Completion(
                text=text,
                usage=part,
                reasoning=thought,
                finish_reason=state.finish_reason,
                model=model or self._model,
            )
            for state, text, thought, part in zip(ordered, texts, thoughts, usages, strict=True)
        ]

    # ----- errors -------------------------------------------------------------------------

    def _error(self, message: str, kind: str, retryable: bool = False,
               retry_after: float | None = None) -> ProviderError:
        return ProviderError(self._redact(message), kind=kind, retryable=retryable,
                             retry_after=retry_after)

    def _redact(self, text: str) -> str:
        """`text` without the API key or anything that looks like (part of) a key."""
        if self._api_key and self._api_key != _PLACEHOLDER_KEY:
            text = text.replace(self._api_key, "[redacted]")
        return _KEYLIKE.sub("[redacted]", text)

    def _protocol(self, detail: str, retries: int | None = None) -> ProviderError:
        """Not the chat protocol. With `retries` (a garbled or truncated reply, which may
        pass) it is tried again; without, it is a reply no retry would change."""
        tried = "" if retries is None else self._retries(retries)
        return self._error(
            f"{self._base_url} answered with something that is not the OpenAI chat protocol"
            f"{tried}: {detail}. Check that the base URL points at an OpenAI-compatible API "
            "(usually ending in /v1) and not at a web page or a proxy.",
            kind="protocol",
            retryable=retries is not None,
        )

    def _cut(self, stream: _StreamState, cause: str) -> ProviderError:
        return self._error(
            f"The stream from {self._base_url} was cut off mid-way, {stream.events} chunk(s) "
            f"in ({cause}){self._retries(stream.retries)}. The server or a proxy closed the "
            "connection early; retry the call.",
            kind="connection",
            retryable=True,
        )

    @staticmethod
    def _retries(retries: int) -> str:
        if not retries:
            return ""
        return f" after {retries} retr{'y' if retries == 1 else 'ies'}"

    async def _translate(self, error: openai.OpenAIError, listing: bool = False,
                         retries: int = 0) -> ProviderError:
        """A ProviderError saying what went wrong and what to do, for an SDK error."""
        url = self._base_url
        connecting = _failed_to_connect(error)
        if isinstance(error, openai.APITimeoutError):
            what = "Could not connect to" if connecting else "No answer from"
            return self._error(
                f"{what} {url} within {self.timeout:g} s (the timeout)"
                f"{self._retries(retries)}. "
                "The server may be overloaded or the request too long; retry, or raise the "
                "timeout (PDR_TIMEOUT, or --timeout on the command line).",
                kind="timeout",
                retryable=True,
            )
        if isinstance(error, openai.APIConnectionError):
            if connecting:
                return self._error(
                    f"Cannot connect to {url}{self._retries(retries)}: {_cause(error)}. Check "
                    "that the server is running and that the URL (host and port) is right.",
                    kind="connection",
                    retryable=True,
                )
            return self._error(
                f"The connection to {url} broke before the answer was complete"
                f"{self._retries(retries)}: {_cause(error)}. The server may have crashed or a "
                "proxy dropped the connection; retry the call.",
                kind="connection",
                retryable=True,
            )
        if isinstance(error, openai.APIResponseValidationError):
            return self._protocol(f"the response did not match the schema ({error.message})")
        if isinstance(error, openai.APIStatusError):
            return await self._translate_status(error, listing, retries)
        if isinstance(error, openai.APIError):
            # An error event inside a stream, after a 200.
            said = _server_message(error)
            if _is_context_error(error):
                return self._context_error(said)
            return self._error(
                f"{url} reported an error mid-stream{self._retries(retries)}: {said}",
                kind="server", retryable=True,
            )
        return self._error(f"The OpenAI client failed: {error}", kind="other")

    async def _translate_status(self, error: openai.APIStatusError, listing: bool,
                                retries: int) -> ProviderError:
        url = self._base_url
        status = error.status_code
        said = _server_message(error)
        if isinstance(error, openai.AuthenticationError):
            # The server's own text may echo a masked key: leave it out altogether.
            return self._error(
                f"Authentication failed at {url} (HTTP 401): the endpoint rejected the API key. "
                "Check the API key you entered or the OPENAI_API_KEY environment variable.",
                kind="auth",
            )
        if isinstance(error, openai.PermissionDeniedError):
            return self._error(
                f"Access denied at {url} (HTTP 403): the API key may not use model "
                f"{self._model!r} or this endpoint; check the key's permissions. Server said: "
                f"{said}",
                kind="auth",
            )
        if isinstance(error, openai.NotFoundError):
            return await self._not_found(said, listing, error)
        if isinstance(error, openai.RateLimitError):
            if error.code == "insufficient_quota":
                return self._error(
                    f"{url} refused the call: the account's quota is used up (HTTP 429 "
                    "insufficient_quota). Check the plan and billing of the API key.",
                    kind="rate_limited",
                )
            wait = error.response.headers.get("retry-after")
            asked = f"; it asked to wait {wait} s" if wait else ""
            return self._error(
                f"Rate limited by {url} (HTTP 429){self._retries(retries)}{asked}. Lower the "
                f"number of parallel calls (width) or wait and try again. Server said: {said}",
                kind="rate_limited",
                retryable=True,
                retry_after=_retry_after(error.response.headers),
            )
        if _is_context_error(error) or status == 413:
            return self._context_error(said)
        if status >= 500 or status in (408, 409):  # 408, 409: the SDK retries them too
            if isinstance(error.body, str) and "<" in error.body:
                said = (
                    f"HTTP {status} with an HTML page instead of JSON: a proxy or gateway "
                    "answered, and the model server behind it may be down."
                )
            return self._error(
                f"Server error from {url} (HTTP {status}){self._retries(retries)}: {said} "
                "Check the server's logs, or retry later.",
                kind="server",
                retryable=True,
                retry_after=_retry_after(error.response.headers),
            )
        return self._error(
            f"{url} rejected the request to model {self._model!r} (HTTP {status}): {said}",
            kind="bad_request",
        )

    def _context_error(self, said: str) -> ProviderError:
        return self._error(
            f"The prompt plus max_tokens is too long for the context window of model "
            f"{self._model!r} at {self._base_url}. Lower max_tokens or the workspace size, or "
            f"use a model with a longer context. Server said: {said}",
            kind="context_length",
        )

    async def _not_found(
        self, said: str, listing: bool, error: openai.APIStatusError
    ) -> ProviderError:
        url = self._base_url
        if listing:
            return self._error(
                f"{url}/models does not exist (HTTP 404): this endpoint does not list models, "
                "or the base URL is wrong (OpenAI-compatible servers usually end in /v1).",
                kind="bad_request",
            )
        about_model = error.code == "model_not_found" or "model" in said.lower()
        try:
            served = await self.list_models()
        except ProviderError as list_error:
            if about_model:
                return self._error(
                    f"Model {self._model!r} was not found at {url} (HTTP 404), and its model "
                    f"list could not be read ({list_error}). Server said: {said}",
                    kind="model_not_found",
                )
            hint = "" if url.endswith("/v1") else f" (try {url}/v1)"
            return self._error(
                f"Nothing found at {url}/chat/completions (HTTP 404). Check the base URL: "
                f"OpenAI-compatible servers usually end in /v1{hint}.",
                kind="bad_request",
            )
        if about_model or self._model not in served:
            offer = (
                f"It serves: {_listing(served)}. Pick one of those."
                if served
                else "It lists no models; check the model name."
            )
            return self._error(
                f"Model {self._model!r} was not found at {url} (HTTP 404). {offer}",
                kind="model_not_found",
            )
        return self._error(
            f"{url} serves model {self._model!r} but answered HTTP 404 for chat completions: "
            f"{said} Check the base URL (OpenAI-compatible servers usually end in /v1).",
            kind="bad_request",
        )


# ----- helpers ------------------------------------------------------------------------------


def _split_usage(
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
    completions = _apportion(completion, weights)
    reasonings = _apportion(reasoning, thought_weights if any(thought_weights) else weights)
    return [
        Usage(prompt, c, r, estimated=True) for c, r in zip(completions, reasonings, strict=True)
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


def _retry_after(headers: httpx2.Headers) -> float | None:
    """Seconds a response asks to wait (retry-after-ms, or Retry-After in seconds or as a
    date), as the SDK reads them; None when it says nothing usable."""
    millis = headers.get("retry-after-ms")
    try:
        if millis is not None:
            return float(millis) / 1000
    except ValueError:
        pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError):
        return None


def _mentions(error: openai.APIStatusError, word: str) -> bool:
    return word in str(error.body) or word in error.message or error.param == word


def _is_context_error(error: openai.APIError) -> bool:
    if error.code == "context_length_exceeded":
        return True
    text = f"{error.message} {error.body}".lower()
    return any(phrase in text for phrase in _CONTEXT_PHRASES)


def _server_message(error: openai.APIError) -> str:
    """What the server said, in one short line."""
    body = error.body
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message:
        message = body if isinstance(body, str) and body else error.message
    message = " ".join(str(message).split())
    if len(message) > 300:
        message = message[:300] + "..."
    # A whole sentence, so that advice can follow it.
    return message if message.endswith((".", "!", "?")) else message + "."


def _failed_to_connect(error: BaseException) -> bool:
    """True when no connection was made at all (refused, unknown host, connect timeout)."""
    current: BaseException | None = error
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        if isinstance(current, httpx2.ConnectError | httpx2.ConnectTimeout):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _cause(error: BaseException) -> str:
    """The lowest-level reason of a connection error, e.g. 'Connection refused'."""
    reasons = []
    current: BaseException | None = error.__cause__ or error.__context__
    while current is not None and len(reasons) < 4:
        text = str(current).strip()
        if text and text not in reasons:
            reasons.append(text)
        current = current.__cause__ or current.__context__
    return reasons[-1] if reasons else str(error)


def _preview(value: object) -> str:
    text = value if isinstance(value, str) else type(value).__name__
    text = " ".join(text.split())
    return repr(text[:80] + ("..." if len(text) > 80 else ""))


def _listing(models: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(models[:limit])
    return shown + (f" and {len(models) - limit} more" if len(models) > limit else "")
