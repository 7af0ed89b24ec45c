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
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import httpx2
import openai
from openai import AsyncOpenAI

from pdr_core.providers.base import (
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    PLACEHOLDER_KEY,
    CapabilityMemory,
    Completion,
    DeltaCallback,
    IndexedDeltaCallback,
    Message,
    ProviderError,
    Sampling,
    check_base_url,
)
from pdr_core.providers.n_support import PROBE_MESSAGES, NSupport
from pdr_core.providers.openai.admission import Retrying
from pdr_core.providers.openai.clients import LoopClients
from pdr_core.providers.openai.connection import ConnectionCheck, check_connection
from pdr_core.providers.openai.errors import Errors, cause, mentions, preview
from pdr_core.providers.openai.sse import StreamState, json_choices, read_event, sse_data
from pdr_core.providers.openai.usage import completions, finished
from pdr_core.providers.tokenize_route import TokenizeRoute

# Model families that take max_completion_tokens and refuse temperature / seed / top_p.
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


def is_reasoning_model(model: str) -> bool:
    """True for OpenAI reasoning model names (o1, o3, o4, gpt-5 families), any vendor prefix."""
    name = model.rsplit("/", 1)[-1].lower()
    return name.startswith(_REASONING_PREFIXES)


def _check_settings(timeout: float, max_retries: int, retry_backoff: float,
                    max_in_flight: int) -> None:
    """ProviderError naming the first setting out of range."""
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


class OpenAIProvider:
    """A Provider for any OpenAI-compatible chat completions endpoint.

    Safe to call concurrently, and from several event loops: each loop gets its own SDK
    client (`clients.LoopClients`). A loop closed other than by asyncio.run or
    asyncio.Runner should `await provider.aclose()` first. `stream=False` uses plain JSON
    responses, for endpoints whose streaming is broken.

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
        base_url: str,
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
        _check_settings(timeout, max_retries, retry_backoff, max_in_flight)
        # Given, never read here: which endpoint is called is choose_endpoint's rule.
        self._base_url = check_base_url(base_url)
        # Never OPENAI_API_KEY by default: which key may go to which endpoint is
        # choose_endpoint's rule (pdr_core.providers.endpoints), not the client's.
        self._api_key = api_key or PLACEHOLDER_KEY
        # May be empty: list_models and check_connection still work, to help pick one.
        self._model = (model or "").strip()
        self.timeout = float(timeout)
        self.reasoning_effort = reasoning_effort
        self.stream = stream
        self.max_in_flight = max_in_flight
        self._retrying = Retrying(max_retries, float(retry_backoff))
        self._errors = Errors(self._base_url, self._api_key, self._model, self.timeout)
        self._clients = LoopClients(self._new_client, max_in_flight)
        # Learnt about the endpoint as calls go: does it take stream_options, does it honour n.
        self._stream_options_ok = True
        self._memory = memory
        self._n = NSupport(self._base_url, self._model, memory)
        # The server's own tokenizer where it has a tokenize route (vLLM, llama.cpp server).
        self._tokenize = TokenizeRoute(self._base_url, self._api_key, self._model, memory,
                                       timeout=min(self.timeout, 10.0))

    def __repr__(self) -> str:
        # Never the key.
        return f"OpenAIProvider(base_url={self._base_url!r}, model={self._model!r})"

    @property
    def model(self) -> str:
        return self._model

    def with_model(self, model: str) -> OpenAIProvider:
        """A provider for another model of the same endpoint, with the same key and limits
        (a mixture of agents' proposer on the run's endpoint)."""
        return OpenAIProvider(
            self._base_url, None if self._api_key == PLACEHOLDER_KEY else self._api_key,
            model, self.timeout, self.max_retries, self.reasoning_effort, stream=self.stream,
            max_in_flight=self.max_in_flight, retry_backoff=self.retry_backoff,
            memory=self._memory)

    async def count_tokens(self, text: str) -> int | None:
        """Tokens of `text` by the endpoint's own tokenizer; None where it has no tokenize
        route (learnt once per endpoint), so workspaces use the labelled estimate."""
        return await self._tokenize.count(text)

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def max_retries(self) -> int:
        return self._retrying.max_retries

    @property
    def retry_backoff(self) -> float:
        return self._retrying.backoff

    @property
    def supports_n(self) -> bool | None:
        """Whether the endpoint honours `n`, as remembered or learnt; None while unknown."""
        return self._n.value

    def _new_client(self) -> AsyncOpenAI:
        return AsyncOpenAI(
            api_key=self._api_key,
            base_url=self._base_url,
            timeout=self.timeout,
            max_retries=0,  # retried here, with the replies the SDK cannot judge
        )

    async def aclose(self) -> None:
        """Close the connections this event loop's client holds (the loop's end also does)."""
        await self._clients.aclose()

    # ----- the Provider protocol, and CompletesN -------------------------------------------

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
        if missing:
            await self._complete_singly(messages, sampling, n, missing, got, on_delta,
                                        max_parallel)
        return [got[i] for i in range(n)]

    async def _complete_singly(
        self,
        messages: Sequence[Message],
        sampling: Sampling,
        n: int,
        missing: list[int],
        got: dict[int, Completion],
        on_delta: IndexedDeltaCallback | None,
        max_parallel: int | None,
    ) -> None:
        """The `missing` choices of `complete_n` as single calls, added to `got`."""
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
        client = self._clients.get().client

        async def attempt(retries: int) -> Any:
            try:
                return await client.models.list()
            except openai.OpenAIError as error:
                raise await self._errors.translate(error, self.list_models, listing=True,
                                                   retries=retries) from error
            except json.JSONDecodeError as error:
                raise self._errors.protocol("the model list is not valid JSON") from error

        page = await self._retrying(attempt)
        data = getattr(page, "data", None)
        if not isinstance(data, list):
            raise self._errors.protocol(f"the model list has no 'data' array ({preview(page)})")
        return [m.id for m in data if isinstance(getattr(m, "id", None), str)]

    async def check_connection(self) -> ConnectionCheck:
        """Reach the endpoint and say, in words, whether this provider's model can be used
        (`connection.check_connection`)."""
        return await check_connection(self)

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
            raise self._errors.no_model()
        entry = self._clients.get()

        async def attempt(retries: int) -> list[Completion]:
            # The slot is held for the request only, never while waiting to retry.
            async with entry.slots:
                return await self._send(entry.client, messages, sampling, n, on_delta, retries)

        return await self._retrying(attempt)

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
        stream = StreamState(on_delta, retries)
        try:
            return await self._send_once(client, chat, params, stream)
        except ProviderError as error:
            if n > 1 and stream.events:
                # A shared request broke after its answers began: keep those that finished.
                error.partial = finished(chat, stream, n, self._model, self._errors)
            raise

    async def _send_once(
        self, client: AsyncOpenAI, chat: list[dict], params: dict[str, Any], stream: StreamState
    ) -> list[Completion]:
        try:
            if not self.stream:
                return await self._create(client, chat, params, stream.on_delta)
            try:
                return await self._stream(client, chat, params, stream, self._stream_options_ok)
            except (openai.BadRequestError, openai.UnprocessableEntityError) as error:
                if not (self._stream_options_ok and mentions(error, "stream_options")):
                    raise
                # This endpoint refuses stream_options; stop sending it and estimate usage.
                self._stream_options_ok = False
                return await self._stream(client, chat, params, stream, False)
        except openai.OpenAIError as error:
            raise await self._errors.translate(error, self.list_models,
                                               retries=stream.retries) from error
        except json.JSONDecodeError as error:
            # A reply cut or garbled on the way: worth another try, like a 5xx.
            raise self._errors.protocol(f"the response is not valid JSON ({error})",
                                        stream.retries) from error

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
        choices = json_choices(response, on_delta, self._errors)
        usage = None if response.usage is None else response.usage.model_dump()
        return completions(messages, choices, usage, response.model or self._model,
                           self._errors)

    async def _stream(
        self,
        client: AsyncOpenAI,
        messages: list[dict],
        params: dict[str, Any],
        stream: StreamState,
        include_usage: bool,
    ) -> list[Completion]:
        extra = {"stream_options": {"include_usage": True}} if include_usage else {}
        # The SDK still builds, sends and retries the request and raises its status errors;
        # the event stream is read here, as plain JSON (`sse`).
        async with client.chat.completions.with_streaming_response.create(
            model=self._model, messages=messages, stream=True, **params, **extra
        ) as response:
            request = response.http_response.request
            try:
                async for data in sse_data(response.iter_bytes()):
                    read_event(stream, data, request, self._errors)
            except httpx2.TimeoutException as error:
                raise self._errors.stalled(stream.events, stream.retries) from error
            except httpx2.TransportError as error:
                raise self._errors.cut(stream.events, stream.retries, cause(error)) from error
            content_type = response.headers.get("content-type", "")
        if not stream.choices:
            if "event-stream" not in content_type:
                raise self._errors.protocol(
                    f"asked for a stream, got {content_type or 'no content type'} "
                    f"instead of text/event-stream"
                )
            # A 200 with nothing in it: truncated on the way, worth another try.
            raise self._errors.protocol("the stream carried no choices", stream.retries)
        if any(state.finish_reason is None for state in stream.choices.values()):
            raise self._errors.cut(stream.events, stream.retries,
                                   "the stream ended without a finish_reason")
        return completions(messages, stream.choices, stream.usage,
                           stream.model or self._model, self._errors)
