"""The OpenAI-protocol test server itself, spoken to with raw HTTP (no SDK)."""

from __future__ import annotations

import asyncio
import http.client
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pdr_core.testing import fake_reply

try:
    from tests.openai_server import OpenAIServer
except ModuleNotFoundError:  # pytest put tests/ itself on sys.path
    from openai_server import OpenAIServer

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = [{"role": "user", "content": "What is 6 * 7?"}]


def post(conn: http.client.HTTPConnection, body: dict, key: str | None = None):
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    conn.request("POST", "/v1/chat/completions", json.dumps(body), headers)
    response = conn.getresponse()
    return response.status, dict(response.getheaders()), response.read()


@pytest.fixture
def connect():
    """Open HTTP connections to a port; all are closed when the test ends."""
    opened: list[http.client.HTTPConnection] = []

    def open_connection(port: int) -> http.client.HTTPConnection:
        opened.append(http.client.HTTPConnection("127.0.0.1", port, timeout=5))
        return opened[-1]

    yield open_connection
    for conn in opened:
        conn.close()


def events(raw: bytes) -> list[str]:
    return [line[6:] for line in raw.decode().split("\n") if line.startswith("data: ")]


def test_json_answer_keep_alive_and_records(connect):
    with OpenAIServer() as server:
        conn = connect(server.port)
        for seed in (1, 2):  # two requests on one kept-alive connection
            status, _, raw = post(conn, {"model": "fake-model", "messages": MESSAGES, "seed": seed})
            body = json.loads(raw)
            assert status == 200 and body["object"] == "chat.completion"
            assert body["choices"][0]["message"]["content"] == fake_reply(MESSAGES, seed)
            assert body["choices"][0]["finish_reason"] == "stop"
            assert body["usage"]["prompt_tokens"] > 0
        server.wait_idle()
        records = server.chat_requests
        assert [r["body"]["seed"] for r in records] == [1, 2]
        assert all(r["status"] == 200 and r["end"] >= r["start"] for r in records)


def test_stream_events_usage_and_done(connect):
    with OpenAIServer() as server:
        conn = connect(server.port)
        body = {
            "model": "fake-model",
            "messages": MESSAGES,
            "seed": 0,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": 10,
        }
        status, headers, raw = post(conn, body)
        assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
        data = events(raw)
        assert data[-1] == "[DONE]"
        chunks = [json.loads(d) for d in data[:-1]]
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1])
        assert text == fake_reply(MESSAGES, 0)[:40]
        assert chunks[-2]["choices"][0]["finish_reason"] == "length"
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 10


def test_n_is_honoured_or_ignored(connect):
    for support_n, expected in ((True, 3), (False, 1)):
        with OpenAIServer(support_n=support_n) as server:
            conn = connect(server.port)
            _, _, raw = post(conn, {"model": "fake-model", "messages": MESSAGES, "n": 3, "seed": 4})
            choices = json.loads(raw)["choices"]
            assert [c["message"]["content"] for c in choices] == [
                fake_reply(MESSAGES, 4 + i) for i in range(expected)
            ]


def test_errors_are_openai_shaped(connect):
    with OpenAIServer(api_key="sk-right") as server:
        conn = connect(server.port)
        status, _, raw = post(conn, {"model": "fake-model", "messages": MESSAGES}, "sk-wrong-key")
        assert status == 401 and json.loads(raw)["error"]["code"] == "invalid_api_key"
        status, _, raw = post(conn, {"model": "nope", "messages": MESSAGES}, "sk-right")
        error = json.loads(raw)["error"]
        assert status == 404 and error["code"] == "model_not_found"
        assert error["type"] == "invalid_request_error" and "nope" in error["message"]
        conn.request("GET", "/v1/models", headers={"Authorization": "Bearer sk-right"})
        models = json.loads(conn.getresponse().read())
        assert [m["id"] for m in models["data"]] == ["fake-model"]
        server.inject("429", retry_after=3)
        status, headers, _ = post(conn, {"model": "fake-model", "messages": MESSAGES}, "sk-right")
        assert status == 429 and headers["Retry-After"] == "3"
    with pytest.raises(ValueError, match="unknown fault"):
        server.inject("bogus")


def test_random_failures_are_seeded(connect):
    def statuses(seed: int) -> list[int]:
        with OpenAIServer(fail_rate=0.3, fail_seed=seed) as server:
            conn = connect(server.port)
            return [post(conn, {"model": "fake-model", "messages": MESSAGES})[0] for _ in range(30)]

    first = statuses(11)
    assert first == statuses(11)
    assert 0 < first.count(500) < 30 and set(first) == {200, 500}


def test_hundreds_of_concurrent_streams_without_a_thread_each():
    async def one(port: int, seed: int) -> str:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        payload = json.dumps(
            {"model": "fake-model", "messages": MESSAGES, "seed": seed, "stream": True}
        ).encode()
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload)
        )
        raw = await reader.read()
        writer.close()
        return raw.decode()

    async def many(port: int) -> list[str]:
        return await asyncio.gather(*(one(port, i) for i in range(300)))

    with OpenAIServer(latency=0.5) as server:
        threads_before = threading.active_count()
        start = time.monotonic()
        replies = asyncio.run(many(server.port))
        elapsed = time.monotonic() - start
        assert threading.active_count() == threads_before
    assert all("data: [DONE]" in reply for reply in replies)
    assert elapsed < 5  # 300 calls of 0.5 s each overlapped
    spans = [(r["start"], r["end"]) for r in server.chat_requests]
    overlap = sum(1 for s, e in spans if s < min(e for _, e in spans))
    assert len(spans) == 300 and overlap > 100


def test_runs_as_a_script(connect):
    process = subprocess.Popen(
        [sys.executable, "tests/openai_server.py", "--port", "0", "--latency", "0.01"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        port = int(base_url.rsplit(":", 1)[1].split("/")[0])
        conn = connect(port)
        status, _, raw = post(conn, {"model": "fake-model", "messages": MESSAGES, "seed": 1})
        assert status == 200
        assert json.loads(raw)["choices"][0]["message"]["content"] == fake_reply(MESSAGES, 1)
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
        process.stdout.close()
