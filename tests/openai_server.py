"""A small OpenAI-protocol test server, standard library only.

It answers `POST /v1/chat/completions` with `pdr_core.testing.fake_reply` (the same
deterministic fake the unit tests use) and `GET /v1/models` with its model list, streams
Server-Sent Events like the real API, and can inject latency and faults so that the real
`openai` client can be tested end to end on 127.0.0.1.

One asyncio event loop in one background thread serves every connection, so hundreds of
concurrent streams cost no threads. Use it in-process::

    with OpenAIServer(latency=0.1) as server:
        server.inject("429", retry_after=1)
        ... OpenAIProvider(server.base_url, "sk-anything", "fake-model") ...
        len(server.requests)

or as a script (the first stdout line is the base URL; it serves until killed)::

    python tests/openai_server.py --port 0 --latency 0.3 --per-token 0.002
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import http
import itertools
import json
import random
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a script: make the repository root importable for pdr_core.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pdr_core.testing import AnswerRule, default_answer, fake_reply, split_chunks
from pdr_core.tokens import (
    CHARS_PER_TOKEN,
    estimate_prompt_tokens,
    estimate_tokens,
)

FAULTS = (
    "429",
    "500",
    "502",
    "timeout",
    "reset",
    "malformed",
    "cut",
    "stall",
    "empty",
    "length",
    "content_filter",
    "no_usage",
    "reasoning",
    "reasoning_only",
    "context_length",
)

# Largest request head we accept; bodies are bounded by Content-Length alone.
_HEAD_LIMIT = 1 << 16
_CHAT_PATH = "/v1/chat/completions"
_MODELS_PATH = "/v1/models"
_TOKENIZE_PATH = "/tokenize"  # at the server's root, as vLLM and llama.cpp serve it


def _error_body(message: str, type_: str, code: str | None, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def peak_in_flight(requests: list[dict[str, Any]]) -> int:
    """The most requests the server was serving at once, from its request log."""
    moments = sorted([(r["start"], 1) for r in requests] + [(r["end"], -1) for r in requests])
    in_flight = peak = 0
    for _, step in moments:
        in_flight += step
        peak = max(peak, in_flight)
    return peak


class _Fault:
    """One injected fault and its options."""

    def __init__(self, name: str, options: dict[str, Any]):
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r}; expected one of {', '.join(FAULTS)}")
        self.name = name
        self.options = options


class _Closed(Exception):
    """The connection has to be closed after this response (reset, cut, hang)."""


class OpenAIServer:
    """An OpenAI-compatible chat server on 127.0.0.1 for tests and benchmarks.

    Thread-safe from the outside: `inject`, `requests` and `stop` may be used from any thread
    while the server's own loop runs in its background thread.

    Besides the faults `inject` queues, `fail_rate` of the chat requests meet one of
    `fail_faults` at random (a 429 asks to wait `fail_retry_after` s); `fail_seed` makes the
    draw reproducible whatever order concurrent requests arrive in.
    """

    def __init__(
        self,
        models: Sequence[str] = ("fake-model",),
        *,
        api_key: str | None = None,
        open_models: bool = False,
        latency: float = 0.0,
        per_token: float = 0.0,
        support_n: bool = True,
        accept_stream_options: bool = True,
        fail_rate: float = 0.0,
        fail_seed: int | None = None,
        fail_faults: Sequence[str] = ("500",),
        fail_retry_after: float = 1.0,
        stream_chunks: int = 8,
        hang: float = 60.0,
        answer: AnswerRule = default_answer,
        tokenizer: Callable[[str], list[int]] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.models = list(models)
        self.api_key = api_key
        self.open_models = open_models  # /v1/models answers without a key, as many do
        # With a tokenizer, POST /tokenize answers as vLLM's does; without, it is not found.
        self.tokenizer = tokenizer
        self.latency = latency
        self.per_token = per_token
        self.support_n = support_n
        self.accept_stream_options = accept_stream_options
        self.fail_rate = fail_rate
        self.fail_seed = fail_seed
        for name in fail_faults:
            _Fault(name, {})  # refuses an unknown name now, not at the first request
        self.fail_faults = tuple(fail_faults)
        self.fail_retry_after = fail_retry_after
        self._seen: collections.Counter[str] = collections.Counter()  # bodies, for fail_seed
        self.answer = answer  # the fake model's answer to (messages, seed)
        self.stream_chunks = stream_chunks
        self.hang = hang
        self.host = host
        self.port = port
        self._random = random.Random(fail_seed)
        self._faults: collections.deque[_Fault] = collections.deque()
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    # ----- lifecycle -------------------------------------------------------------------

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`, without the /v1 prefix."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The base URL an OpenAI client wants: `http://127.0.0.1:PORT/v1`."""
        return f"{self.url}/v1"

    def start(self) -> OpenAIServer:
        """Bind (port 0 picks a free port) and serve in a daemon thread; returns self."""
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(
                        self._serve_connection,
                        self.host,
                        self.port,
                        backlog=2048,
                        limit=_HEAD_LIMIT,
                    )
                )
                self.port = self._server.sockets[0].getsockname()[1]
            except OSError as error:
                failure.append(error)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="openai-test-server", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        """Close the listener, cancel every open connection, and end the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if not loop.is_closed():
            future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            try:
                future.result(timeout=10)
            finally:
                loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._thread = None
        self._loop = None

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        tasks = [task for task in self._tasks if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ----- what tests use --------------------------------------------------------------

    def inject(self, fault: str, count: int = 1, **options: Any) -> None:
        """Queue `fault` for the next `count` chat requests (one fault per request).

        Faults: "429" (with a Retry-After header), "500", "502" (an HTML proxy page),
        "context_length" (400, code context_length_exceeded), "timeout" (silence, then a
        reset), "reset" (TCP RST at once), "malformed" (200 with a body that is not JSON, or
        mid-stream an event that is not JSON), "cut" (the body or stream stops half-way and
        the connection drops), "stall" (the stream stops half-way and stays silent), "empty",
        "length", "content_filter" (finish reasons), "no_usage", "reasoning"
        (reasoning_content plus reasoning_tokens), "reasoning_only" (a reasoning model that
        spent its whole budget thinking: reasoning_content, no content, finish "length").

        Options: `retry_after` (seconds, for "429"), `seconds` (how long "timeout" and
        "stall" stay silent), `body` and `content_type` (what "malformed" sends instead).
        """
        with self._lock:
            for _ in range(count):
                self._faults.append(_Fault(fault, dict(options)))

    def clear(self) -> None:
        """Forget queued faults and recorded requests."""
        with self._lock:
            self._faults.clear()
            self._requests.clear()

    @property
    def requests(self) -> list[dict[str, Any]]:
        """A snapshot of every request so far: method, path, body, start, end, status, fault.

        `start` and `end` are `time.monotonic()` values taken when the request had been read
        and when its last byte was written; `end` is None while it is still in flight, and
        `status` is None for a connection dropped instead of answered (reset, cut, timeout).
        """
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """The recorded requests to the chat completions endpoint."""
        return [r for r in self.requests if r["path"] == _CHAT_PATH]

    def wait_idle(self, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The recorded requests once every one has ended: a client can read a whole reply
        a moment before the server has finished recording it."""
        deadline = time.monotonic() + timeout
        while any(r["end"] is None for r in self.requests) and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.requests

    @property
    def pending_faults(self) -> int:
        with self._lock:
            return len(self._faults)

    # ----- HTTP/1.1 --------------------------------------------------------------------

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                except asyncio.LimitOverrunError:
                    await self._send_json(writer, 431, _error_body("Header too large", "x", None))
                    return
                try:
                    method, target, keep_alive, headers, length = self._parse_head(head)
                except ValueError as error:
                    body = _error_body(f"Malformed request: {error}", "invalid_request_error", None)
                    await self._send_json(writer, 400, body, keep_alive=False)
                    return
                try:
                    body = await reader.readexactly(length) if length else b""
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                try:
                    await self._dispatch(method, target, headers, body, writer, keep_alive)
                except _Closed:
                    return
                except ConnectionError:
                    return  # the client went away mid-response
                if not keep_alive:
                    return
        except asyncio.CancelledError:
            # stop() cancels open connections; end quietly, since asyncio's stream callback
            # logs an error for a connection task that ends cancelled.
            return
        finally:
            self._tasks.discard(task)
            if not writer.transport.is_closing():
                writer.close()

    @staticmethod
    def _parse_head(head: bytes) -> tuple[str, str, bool, dict[str, str], int]:
        request_line, *lines = head.decode("latin-1").split("\r\n")
        parts = request_line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise ValueError(f"bad request line {request_line!r}")
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines:
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep:
                raise ValueError(f"bad header line {line!r}")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            raise ValueError("chunked request bodies are not supported; send Content-Length")
        length = int(headers.get("content-length", "0") or 0)
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        return method, target, keep_alive, headers, length

    @staticmethod
    def _head(status: int, headers: dict[str, str]) -> bytes:
        reason = http.HTTPStatus(status).phrase
        lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _send_bytes(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        payload: bytes,
        content_type: str,
        extra: dict[str, str] | None = None,
        keep_alive: bool = True,
    ) -> None:
        headers = {
            "Content-Type": content_type,
            "Content-Length": str(len(payload)),
            "Connection": "keep-alive" if keep_alive else "close",
            **(extra or {}),
        }
        writer.write(self._head(status, headers) + payload)
        await writer.drain()

    async def _send_json(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        obj: object,
        extra: dict[str, str] | None = None,
        keep_alive: bool = True,
    ) -> None:
        payload = json.dumps(obj).encode()
        await self._send_bytes(writer, status, payload, "application/json", extra, keep_alive)

    @staticmethod
    def _reset(writer: asyncio.StreamWriter) -> None:
        """Drop the connection with a TCP RST, as a crashed server or proxy would."""
        if writer.transport.is_closing():
            return
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    # ----- routes ----------------------------------------------------------------------

    async def _dispatch(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        writer: asyncio.StreamWriter,
        keep_alive: bool,
    ) -> None:
        path = target.split("?", 1)[0].rstrip("/") or "/"
        record: dict[str, Any] = {
            "method": method,
            "path": path,
            "body": None,
            "start": time.monotonic(),
            "end": None,
            "status": None,
            "fault": None,
            # What the client sent, e.g. to check which key went where.
            "authorization": headers.get("authorization"),
        }
        with self._lock:
            self._requests.append(record)
        status = None  # stays None when the connection is dropped instead of answered
        try:
            status = await self._route(method, path, headers, body, writer, keep_alive, record)
        finally:
            record["status"] = status
            record["end"] = time.monotonic()

    async def _route(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        writer: asyncio.StreamWriter,
        keep_alive: bool,
        record: dict[str, Any],
    ) -> int:
        if path == _TOKENIZE_PATH and method == "POST" and self.tokenizer is not None:
            record["body"] = json.loads(body or b"{}")
            tokens = self.tokenizer(str(record["body"].get("prompt", "")))
            await self._send_json(writer, 200, {"count": len(tokens), "tokens": tokens,
                                                "max_model_len": 8192}, None, keep_alive)
            return 200
        if path not in (_CHAT_PATH, _MODELS_PATH):
            message = f"Unknown request URL: {method} {path}. Did you mean {_CHAT_PATH}?"
            error = _error_body(message, "invalid_request_error", "unknown_url")
            await self._send_json(writer, 404, error, keep_alive=keep_alive)
            return 404
        open_path = self.open_models and path == _MODELS_PATH
        if self.api_key is not None and not open_path and \
                headers.get("authorization") != f"Bearer {self.api_key}":
            return await self._unauthorized(headers, writer, keep_alive)
        if path == _MODELS_PATH:
            if method != "GET":
                await self._send_json(writer, 405, _error_body("Use GET", "x", None))
                return 405
            data = [
                {"id": m, "object": "model", "created": 1700000000, "owned_by": "pdr-test"}
                for m in self.models
            ]
            await self._send_json(writer, 200, {"object": "list", "data": data}, None, keep_alive)
            return 200
        if method != "POST":
            await self._send_json(writer, 405, _error_body("Use POST", "x", None))
            return 405
        try:
            request = json.loads(body)
            if not isinstance(request, dict):
                raise ValueError("the body is not a JSON object")
        except ValueError as error:
            message = f"We could not parse the JSON body of your request: {error}"
            await self._send_json(
                writer, 400, _error_body(message, "invalid_request_error", None), None, keep_alive
            )
            return 400
        record["body"] = request
        return await self._chat(request, body, writer, keep_alive, record)

    async def _unauthorized(
        self, headers: dict[str, str], writer: asyncio.StreamWriter, keep_alive: bool
    ) -> int:
        # Like the real API, echo a masked form of the key sent: clients must not pass it on.
        sent = headers.get("authorization", "").removeprefix("Bearer ").strip()
        if sent:
            masked = sent[:3] + "*" * max(len(sent) - 7, 0) + sent[-4:]
            message = f"Incorrect API key provided: {masked}. Check your key."
        else:
            message = "You didn't provide an API key in the Authorization header (Bearer)."
        error = _error_body(message, "invalid_request_error", "invalid_api_key")
        await self._send_json(writer, 401, error, None, keep_alive)
        return 401

    def _next_fault(self, body: bytes) -> _Fault | None:
        """The queued fault, else one of `fail_faults` drawn at `fail_rate`.

        With `fail_seed`, the draw depends on the seed, the request body and how many times
        that same body came before (a retry sends it again): not on the order in which
        concurrent requests arrive, so that runs with many calls in flight meet the same
        faults every time.
        """
        with self._lock:
            if self._faults:
                return self._faults.popleft()
            if not self.fail_rate:
                return None
            draw = self._random
            if self.fail_seed is not None:
                digest = hashlib.sha256(body).hexdigest()
                draw = random.Random(f"{self.fail_seed}:{digest}:{self._seen[digest]}")
                self._seen[digest] += 1
            if draw.random() >= self.fail_rate:
                return None
            name = draw.choice(self.fail_faults)
        return _Fault(name, {"retry_after": self.fail_retry_after} if name == "429" else {})

    async def _chat(
        self,
        request: dict[str, Any],
        body: bytes,
        writer: asyncio.StreamWriter,
        keep_alive: bool,
        record: dict[str, Any],
    ) -> int:
        model = request.get("model")
        if model not in self.models:
            message = f"The model `{model}` does not exist or you do not have access to it."
            error = _error_body(message, "invalid_request_error", "model_not_found", "model")
            await self._send_json(writer, 404, error, None, keep_alive)
            return 404
        messages = request.get("messages")
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            error = _error_body(
                "'messages' must be a list of objects", "invalid_request_error", None, "messages"
            )
            await self._send_json(writer, 400, error, None, keep_alive)
            return 400
        if "stream_options" in request and not self.accept_stream_options:
            message = "Unrecognized request argument supplied: stream_options"
            error = _error_body(message, "invalid_request_error", None, "stream_options")
            await self._send_json(writer, 400, error, None, keep_alive)
            return 400

        fault = self._next_fault(body)
        record["fault"] = fault.name if fault else None
        name = fault.name if fault else None
        options = fault.options if fault else {}
        stream = bool(request.get("stream"))
        if name is not None:
            status = await self._status_fault(name, options, writer, keep_alive, messages, stream)
            if status is not None:
                return status
        if self.latency:
            await asyncio.sleep(self.latency)

        choices = self._choices(request, messages, name)
        usage = None if name == "no_usage" else self._usage(messages, choices)
        if stream:
            include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
            await self._stream(writer, model, choices, usage if include_usage else None, fault)
            return 200
        if name == "cut":
            # Promise the whole body, send half of it, then drop the connection.
            payload = json.dumps(self._completion(model, choices, usage)).encode()
            head = self._head(
                200, {"Content-Type": "application/json", "Content-Length": str(len(payload))}
            )
            writer.write(head + payload[: len(payload) // 2])
            await writer.drain()
            self._reset(writer)
            raise _Closed
        if self.per_token:
            tokens = max(c["tokens"] for c in choices)
            await asyncio.sleep(self.per_token * tokens)
        await self._send_json(
            writer, 200, self._completion(model, choices, usage), None, keep_alive
        )
        return 200

    async def _status_fault(
        self,
        name: str,
        options: dict[str, Any],
        writer: asyncio.StreamWriter,
        keep_alive: bool,
        messages: list[dict],
        stream: bool,
    ) -> int | None:
        """Answer the faults that replace the whole response; None for the others."""
        if name == "429":
            retry_after = options.get("retry_after", 1)
            message = "Rate limit reached for requests. Please try again shortly."
            error = _error_body(message, "requests", "rate_limit_exceeded")
            extra = {"Retry-After": str(retry_after)} if retry_after is not None else None
            await self._send_json(writer, 429, error, extra, keep_alive)
            return 429
        if name == "500":
            message = "The server had an error while processing your request. Sorry about that!"
            await self._send_json(
                writer, 500, _error_body(message, "server_error", None), None, keep_alive
            )
            return 500
        if name == "502":
            # What a reverse proxy says when the model server behind it is down: not JSON.
            page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            await self._send_bytes(writer, 502, page, "text/html", None, keep_alive)
            return 502
        if name == "context_length":
            tokens = estimate_prompt_tokens(messages)
            message = (
                "This model's maximum context length is 4096 tokens. However, your messages "
                f"resulted in {tokens + 4096} tokens. Please reduce the length of the messages."
            )
            error = _error_body(
                message, "invalid_request_error", "context_length_exceeded", "messages"
            )
            await self._send_json(writer, 400, error, None, keep_alive)
            return 400
        if name == "timeout":
            # Say nothing for far longer than any client waits, then hang up.
            await asyncio.sleep(options.get("seconds", self.hang))
            self._reset(writer)
            raise _Closed
        if name == "reset":
            self._reset(writer)
            raise _Closed
        if name == "malformed" and (not stream or "body" in options):
            payload = options.get("body", b'{"id": "chatcmpl-1", "choices": [{"message": ')
            if isinstance(payload, str):
                payload = payload.encode()
            content_type = options.get("content_type", "application/json")
            await self._send_bytes(writer, 200, payload, content_type, None, keep_alive)
            return 200
        return None

    def _choices(
        self, request: dict[str, Any], messages: list[dict], fault: str | None
    ) -> list[dict[str, Any]]:
        n = int(request.get("n") or 1) if self.support_n else 1
        seed = request.get("seed")
        limit = request.get("max_completion_tokens") or request.get("max_tokens")
        choices = []
        for index in range(max(n, 1)):
            choice_seed = seed + index if isinstance(seed, int) else None
            text = fake_reply(messages, choice_seed, self.answer)
            finish = "stop"
            reasoning = ""
            if fault == "empty":
                text = ""
            elif fault == "length":
                text, finish = text[: len(text) // 2], "length"
            elif fault == "content_filter":
                text, finish = text[: len(text) // 3], "content_filter"
            elif fault == "reasoning_only":
                text, finish = "", "length"
                reasoning = f"Let me think about every attempt in turn (seed {choice_seed})..."
            elif fault == "reasoning":
                reasoning = (
                    f"Hmm, the user wants an answer (seed {choice_seed}). "
                    "Let me think step by step before I write it down."
                )
            if isinstance(limit, int) and len(text) > limit * CHARS_PER_TOKEN:
                text, finish = text[: limit * CHARS_PER_TOKEN], "length"
            choices.append(
                {
                    "text": text,
                    "reasoning": reasoning,
                    "finish": finish,
                    "tokens": estimate_tokens(text) + estimate_tokens(reasoning),
                }
            )
        return choices

    @staticmethod
    def _usage(messages: list[dict], choices: list[dict[str, Any]]) -> dict[str, Any]:
        prompt = estimate_prompt_tokens(messages)
        completion = sum(c["tokens"] for c in choices)
        reasoning = sum(estimate_tokens(c["reasoning"]) for c in choices)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        }

    def _envelope(self, model: str, kind: str) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{next(self._ids)}",
            "object": kind,
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_pdr_test",
        }

    def _completion(
        self, model: str, choices: list[dict[str, Any]], usage: dict[str, Any] | None
    ) -> dict[str, Any]:
        body = self._envelope(model, "chat.completion")
        body["choices"] = []
        for index, choice in enumerate(choices):
            message = {"role": "assistant", "content": choice["text"]}
            if choice["reasoning"]:
                message["reasoning_content"] = choice["reasoning"]
            body["choices"].append(
                {
                    "index": index,
                    "message": message,
                    "finish_reason": choice["finish"],
                    "logprobs": None,
                }
            )
        if usage is not None:
            body["usage"] = usage
        return body

    async def _stream(
        self,
        writer: asyncio.StreamWriter,
        model: str,
        choices: list[dict[str, Any]],
        usage: dict[str, Any] | None,
        fault: _Fault | None,
    ) -> None:
        envelope = self._envelope(model, "chat.completion.chunk")
        # Every choice's chunks, interleaved round-robin as a server that batches n would.
        per_choice = []
        for index, choice in enumerate(choices):
            events: list[tuple[dict[str, Any], str | None, int]] = [
                ({"role": "assistant", "content": ""}, None, 0)
            ]
            if choice["reasoning"]:
                for piece in split_chunks(choice["reasoning"], max(self.stream_chunks // 2, 1)):
                    events.append(({"reasoning_content": piece}, None, estimate_tokens(piece)))
            if choice["text"]:
                for piece in split_chunks(choice["text"], self.stream_chunks):
                    events.append(({"content": piece}, None, estimate_tokens(piece)))
            events.append(({}, choice["finish"], 0))
            per_choice.append([(index, *event) for event in events])
        ordered = [e for group in itertools.zip_longest(*per_choice) for e in group if e]

        writer.write(
            self._head(
                200,
                {
                    "Content-Type": "text/event-stream; charset=utf-8",
                    "Cache-Control": "no-cache",
                    "Transfer-Encoding": "chunked",
                },
            )
        )
        await writer.drain()
        name = fault.name if fault else None
        stop_at = len(ordered) // 2 if name in ("cut", "stall", "malformed") else None
        for position, (index, delta, finish, tokens) in enumerate(ordered):
            if position == stop_at:
                if name == "malformed":
                    await self._send_chunk(writer, b"data: {this is not json\n\n")
                    break
                if name == "stall":
                    await asyncio.sleep(fault.options.get("seconds", self.hang))
                self._reset(writer)
                raise _Closed
            if self.per_token and tokens:
                await asyncio.sleep(self.per_token * tokens)
            chunk = dict(
                envelope,
                choices=[
                    {
                        "index": index,
                        "delta": delta,
                        "finish_reason": finish,
                        "logprobs": None,
                    }
                ],
            )
            await self._send_event(writer, chunk)
        if usage is not None:
            await self._send_event(writer, dict(envelope, choices=[], usage=usage))
        await self._send_chunk(writer, b"data: [DONE]\n\n")
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def _send_event(self, writer: asyncio.StreamWriter, obj: object) -> None:
        await self._send_chunk(writer, b"data: " + json.dumps(obj).encode() + b"\n\n")

    @staticmethod
    async def _send_chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        await writer.drain()


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until SIGTERM or Ctrl-C; print the base URL as the first stdout line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per call")
    parser.add_argument("--per-token", type=float, default=0.0, help="seconds per output token")
    parser.add_argument("--model", action="append", help="a served model (repeatable)")
    parser.add_argument("--api-key", default=None, help="require this bearer key")
    parser.add_argument("--no-n", action="store_true", help="ignore n, as llama.cpp does")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="share of random faults")
    parser.add_argument("--fail-seed", type=int, default=None)
    parser.add_argument("--fail-faults", default="500",
                        help="comma-separated faults to draw from, e.g. 500,429,reset")
    args = parser.parse_args(argv)

    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    server = OpenAIServer(
        args.model or ["fake-model"],
        api_key=args.api_key,
        latency=args.latency,
        per_token=args.per_token,
        support_n=not args.no_n,
        fail_rate=args.fail_rate,
        fail_seed=args.fail_seed,
        fail_faults=args.fail_faults.split(","),
        host=args.host,
        port=args.port,
    )
    with server:
        print(server.base_url, flush=True)
        try:
            while not stopped.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
