"""Reading a chat completion reply: the server-sent events of a stream, each folded into a
StreamState, or a plain JSON reply read into the same choices.

The events are read as plain JSON rather than as the SDK's chunk models: building those cost
more CPU than the HTTP itself, and that cost capped how many calls one process could stream
at once (BENCHMARKS.md, scale).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai
from openai.types.chat import ChatCompletion

from pdr_core.providers.base import IndexedDeltaCallback
from pdr_core.providers.openai.errors import Errors, preview

# Where DeepSeek, vLLM, llama.cpp (reasoning_content) and OpenRouter, Ollama (reasoning)
# put thinking text; the SDK's models keep such unknown fields in `model_extra`.
REASONING_FIELDS = ("reasoning_content", "reasoning")


@dataclass
class Choice:
    """One choice's stream, collected piece by piece."""

    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    finish_reason: str | None = None


@dataclass
class StreamState:
    """A streamed response as read so far."""

    on_delta: IndexedDeltaCallback | None
    retries: int = 0  # tries before this one, for the messages
    choices: dict[int, Choice] = field(default_factory=dict)
    usage: dict[str, Any] | None = None
    model: str | None = None
    events: int = 0
    done: bool = False  # [DONE] seen


def _data_field(line: bytes) -> bytes | None:
    """The value of a server-sent event's `data:` line (None for any other line)."""
    if not line.startswith(b"data:"):
        return None
    return line[6:] if line.startswith(b"data: ") else line[5:]


async def sse_data(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
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


def read_event(stream: StreamState, data: bytes, request: httpx2.Request,
               errors: Errors) -> None:
    """Fold one event's data into `stream`: `[DONE]`, or a chat.completion.chunk as JSON."""
    if stream.done:
        return  # read to the end, so that the connection can be reused
    if data.startswith(b"[DONE]"):
        stream.done = True
        return
    try:
        chunk = json.loads(data)
    except ValueError as error:  # JSONDecodeError, or bytes that are not UTF-8
        raise errors.protocol(
            f"stream event {stream.events + 1} is not valid JSON "
            f"({getattr(error, 'msg', error)})",
            stream.retries,
        ) from error
    if not isinstance(chunk, dict):
        raise errors.protocol(f"a stream event is not a chunk: {preview(chunk)}")
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
        raise errors.protocol(f"a chunk's 'choices' is not a list: {preview(choices)}")
    for choice in choices:
        if not isinstance(choice, dict):
            raise errors.protocol(f"a chunk's choice is not an object: {preview(choice)}")
        _read_choice(stream, choice)


def _read_choice(stream: StreamState, choice: dict[str, Any]) -> None:
    """Fold one choice's delta of a chunk into its Choice."""
    index = choice.get("index")
    index = index if isinstance(index, int) else 0
    state = stream.choices.get(index)
    if state is None:
        state = stream.choices[index] = Choice()
    delta = choice.get("delta")
    if isinstance(delta, dict):
        thought = _text_field(delta, REASONING_FIELDS)
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


def json_choices(response: object, on_delta: IndexedDeltaCallback | None,
                 errors: Errors) -> dict[int, Choice]:
    """The choices of a plain (not streamed) JSON reply, each sent whole to `on_delta`."""
    if not isinstance(response, ChatCompletion):
        raise errors.protocol(f"expected a JSON chat completion, got {preview(response)}")
    if not response.choices:
        extra = response.model_extra or {}
        if isinstance(extra.get("error"), dict):
            # Some servers answer 200 with an error object instead of an error status.
            said = " ".join(str(extra["error"].get("message", extra["error"])).split())
            raise errors.error_reply(said)
        keys = sorted(response.model_fields_set | set(extra))
        raise errors.protocol(f"the JSON has no 'choices' (it has: {', '.join(keys) or '-'})")
    choices: dict[int, Choice] = {}
    for position, choice in enumerate(response.choices):
        message = getattr(choice, "message", None)
        if message is None:
            raise errors.protocol("a choice has no 'message'")
        index = choice.index if isinstance(choice.index, int) else position
        text = message.content or ""
        choices[index] = Choice(
            [text], [_extra_text(message, *REASONING_FIELDS)], choice.finish_reason
        )
        if on_delta is not None and text:
            on_delta(index, text)
    return choices


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
