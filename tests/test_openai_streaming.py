"""How OpenAIProvider reads event streams and paces its requests (the lean streaming path)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest

from pdr_core.providers.base import ProviderError, Sampling
from pdr_core.providers.openai import OpenAIProvider
from pdr_core.providers.openai.admission import Admission
from pdr_core.providers.openai.sse import sse_data

try:
    from tests.openai_server import OpenAIServer, peak_in_flight
except ModuleNotFoundError:  # pytest put tests/ itself on sys.path
    from openai_server import OpenAIServer, peak_in_flight

MESSAGES = [{"role": "user", "content": "What is 17 * 23 + 4?"}]


def _events(chunks: list[bytes]) -> list[bytes]:
    async def feed():
        for chunk in chunks:
            yield chunk

    async def collect() -> list[bytes]:
        return [data async for data in sse_data(feed())]

    return asyncio.run(collect())


def _chunk(content: str | None = None, finish: str | None = None, **extra) -> str:
    delta = {} if content is None else {"content": content}
    body = {"id": "c1", "object": "chat.completion.chunk", "model": "fake-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
    return "data: " + json.dumps(body) + "\n\n"


def test_server_sent_events_are_read_whatever_the_chunking_and_line_endings():
    body = (b": a comment line\r\n"
            b"event: message\r\ndata: {\"a\": 1}\r\n\r\n"
            b"data: {\"b\":\ndata: 2}\n\n"
            b"data:{\"c\": 3}\n\n"
            b"data: [DONE]")  # the last event without its blank line still counts
    expected = [b'{"a": 1}', b'{"b":\n2}', b'{"c": 3}', b"[DONE]"]
    assert _events([body]) == expected
    # Split at every byte, and in uneven pieces: the same events.
    assert _events([body[i:i + 1] for i in range(len(body))]) == expected
    assert _events([body[:7], body[7:40], body[40:41], body[41:]]) == expected


def test_a_stream_with_reasoning_usage_and_an_early_done_is_read_whole():
    body = (
        "data: " + json.dumps({"choices": [{"index": 0, "delta": {
            "reasoning_content": "Let me think. "}}]}) + "\n\n"
        + _chunk("The answer ") + _chunk("is 395.")
        + _chunk(finish="stop")
        + "data: " + json.dumps({"choices": [], "usage": {
            "prompt_tokens": 12, "completion_tokens": 9,
            "completion_tokens_details": {"reasoning_tokens": 4}}}) + "\n\n"
        + "data: [DONE]\n\n"
        + _chunk("after done, ignored")
    )
    pieces: list[str] = []
    with OpenAIServer() as server:
        server.inject("malformed", body=body, content_type="text/event-stream")
        provider = OpenAIProvider(server.base_url, "sk-x", "fake-model", max_retries=0)
        completion = asyncio.run(provider.complete(MESSAGES, Sampling(64), pieces.append))
    assert completion.text == "The answer is 395." and pieces == ["The answer ", "is 395."]
    assert completion.reasoning == "Let me think. "
    assert completion.finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens,
            completion.usage.reasoning_tokens, completion.usage.estimated) == (12, 9, 4, False)


@pytest.mark.parametrize("event, words", [
    ("data: [1, 2, 3]\n\n", ["not a chunk"]),
    ('data: {"choices": {"index": 0}}\n\n', ["'choices' is not a list"]),
    ('data: {"choices": ["text"]}\n\n', ["choice is not an object"]),
    ("data: {\"choices\": [\xff]}\n\n", ["not valid JSON"]),
])
def test_events_that_are_not_chat_chunks_are_protocol_errors_that_say_so(event, words):
    with OpenAIServer() as server:
        server.inject("malformed", body=event.encode("latin-1"),
                      content_type="text/event-stream")
        provider = OpenAIProvider(server.base_url, "sk-x", "fake-model", max_retries=0)
        with pytest.raises(ProviderError) as caught:
            asyncio.run(provider.complete(MESSAGES, Sampling(64)))
    assert caught.value.kind == "protocol"
    assert all(word in str(caught.value) for word in words), str(caught.value)
    assert "base URL" in str(caught.value)


def test_an_error_event_after_a_200_is_reported_as_the_server_said_it():
    body = _chunk("partial ") + 'data: {"error": {"message": "model overloaded"}}\n\n'
    with OpenAIServer() as server:
        server.inject("malformed", body=body, content_type="text/event-stream")
        provider = OpenAIProvider(server.base_url, "sk-x", "fake-model", max_retries=0)
        with pytest.raises(ProviderError) as caught:
            asyncio.run(provider.complete(MESSAGES, Sampling(64)))
    assert caught.value.kind == "server" and caught.value.retryable
    assert "mid-stream" in str(caught.value) and "model overloaded" in str(caught.value)


def test_requests_in_flight_never_exceed_max_in_flight_across_callers():
    with OpenAIServer(latency=0.1) as server:
        provider = OpenAIProvider(server.base_url, "sk-x", "fake-model", max_retries=0,
                                  max_in_flight=3)

        async def many() -> list[str]:
            calls = [provider.complete(MESSAGES, Sampling(64, seed=i)) for i in range(10)]
            return [c.text for c in await asyncio.gather(*calls)]

        texts = asyncio.run(many())
        requests = server.wait_idle()
    assert len(texts) == 10 and all(texts) and len(requests) == 10
    assert peak_in_flight(requests) == 3


def test_max_in_flight_must_be_positive():
    with pytest.raises(ProviderError, match="max_in_flight must be 1 or more, not 0"):
        OpenAIProvider("http://127.0.0.1:9/v1", None, "m", max_in_flight=0)


def test_admission_opens_at_most_per_turn_requests_in_one_turn_of_the_loop():
    async def main() -> tuple[Counter, int]:
        loop = asyncio.get_running_loop()
        turn = 0

        def tick() -> None:
            nonlocal turn
            turn += 1
            if not done.is_set():
                loop.call_soon(tick)

        done = asyncio.Event()
        loop.call_soon(tick)
        admission = Admission(loop, limit=6, per_turn=4)
        opened: list[int] = []
        most = now = 0

        async def one() -> None:
            nonlocal most, now
            async with admission:
                opened.append(turn)
                now += 1
                most = max(most, now)
                await asyncio.sleep(0.01)
                now -= 1

        await asyncio.gather(*(one() for _ in range(20)))
        done.set()
        return Counter(opened), most

    per_turn, most = asyncio.run(main())
    assert sum(per_turn.values()) == 20
    assert max(per_turn.values()) <= 4 and most == 6


def test_a_request_cancelled_while_waiting_for_its_turn_gives_its_slot_back():
    async def main() -> int:
        loop = asyncio.get_running_loop()
        admission = Admission(loop, limit=2, per_turn=1)
        entered: list[int] = []

        async def one(index: int) -> None:
            async with admission:
                entered.append(index)
                await asyncio.sleep(0)

        # Both take a slot in the same turn; the second waits for the next turn, cancelled.
        first, second = asyncio.create_task(one(0)), asyncio.create_task(one(1))
        await asyncio.sleep(0)
        second.cancel()
        await asyncio.gather(first, second, return_exceptions=True)
        async def together(index: int) -> None:
            async with admission:
                entered.append(index)
                while len(entered) < 3:  # both in at once: that needs both slots
                    await asyncio.sleep(0.001)

        # A slot lost to the cancelled request would leave one of these waiting forever.
        await asyncio.wait_for(asyncio.gather(together(2), together(3)), timeout=5)
        return len(entered)

    assert asyncio.run(main()) == 3
