"""OpenAIProvider through the real `openai` client against the project's test server."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

from pdr_core.providers.base import Provider, ProviderError, Sampling, Usage
from pdr_core.providers.openai import OpenAIProvider, is_reasoning_model
from pdr_core.testing import KnownCapabilities, fake_reply
from pdr_core.tokens import estimate_prompt_tokens, estimate_tokens

try:
    from tests.openai_server import OpenAIServer
except ModuleNotFoundError:  # pytest put tests/ itself on sys.path
    from openai_server import OpenAIServer

MESSAGES = [
    {"role": "system", "content": "You are careful."},
    {"role": "user", "content": "What is 17 * 23 + 4?"},
]
SAMPLING = Sampling(max_tokens=512, temperature=0.5, seed=7)
PLANTED_KEY = "sk-test-PLANTED-SECRET-123456"


@pytest.fixture(scope="module")
def server():
    with OpenAIServer(models=["fake-model", "o3-mini"]) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh(server):
    server.clear()
    yield
    assert server.pending_faults == 0, "a test left injected faults unused"


def provider_for(server: OpenAIServer, **options) -> OpenAIProvider:
    settings = {"timeout": 5.0, "max_retries": 0, "api_key": "sk-anything"}
    settings.update(options)
    model = settings.pop("model", "fake-model")
    key = settings.pop("api_key")
    return OpenAIProvider(server.base_url, key, model, **settings)


def complete(provider: OpenAIProvider, sampling: Sampling = SAMPLING, messages=MESSAGES):
    """Run one call in a fresh event loop; return (completion, deltas)."""
    deltas: list[str] = []
    result = asyncio.run(provider.complete(messages, sampling, deltas.append))
    return result, deltas


def failure(provider: OpenAIProvider, sampling: Sampling = SAMPLING) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        complete(provider, sampling)
    return caught.value


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ----- the happy paths ---------------------------------------------------------------------


def test_streams_text_and_reports_usage(server):
    provider = provider_for(server)
    assert isinstance(provider, Provider)
    result, deltas = complete(provider)
    expected = fake_reply(MESSAGES, 7)
    assert result.text == expected
    assert len(deltas) > 2 and "".join(deltas) == expected
    assert result.finish_reason == "stop"
    assert result.model == "fake-model"
    assert result.reasoning == ""
    assert result.usage == Usage(estimate_prompt_tokens(MESSAGES), estimate_tokens(expected))
    (request,) = server.chat_requests
    body = request["body"]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 512 and body["temperature"] == 0.5 and body["seed"] == 7
    assert "max_completion_tokens" not in body and "n" not in body
    assert body["messages"] == MESSAGES


def test_non_streaming_path(server):
    provider = provider_for(server, stream=False)
    result, deltas = complete(provider)
    assert result.text == fake_reply(MESSAGES, 7)
    assert deltas == [result.text]
    assert result.usage.completion_tokens == estimate_tokens(result.text)
    assert not result.usage.estimated
    assert "stream" not in server.chat_requests[0]["body"]


def test_list_models_and_check_connection(server):
    provider = provider_for(server)
    assert asyncio.run(provider.list_models()) == ["fake-model", "o3-mini"]
    check = asyncio.run(provider.check_connection())
    assert check.ok and check.models == ("fake-model", "o3-mini")
    assert server.base_url in check.message and check.latency_s is not None
    wrong = asyncio.run(provider_for(server, model="gpt-nope").check_connection())
    assert not wrong.ok and "fake-model" in wrong.message and "gpt-nope" in wrong.message


def test_without_a_model_the_check_offers_the_served_ones(server):
    provider = provider_for(server, model="")
    check = asyncio.run(provider.check_connection())
    assert check.ok and check.models == ("fake-model", "o3-mini")
    assert "Pick a model" in check.message and "fake-model" in check.message
    error = failure(provider)
    assert error.kind == "bad_request" and "No model name" in str(error)
    assert server.chat_requests == []


def test_base_url_without_v1_is_explained(server):
    provider = OpenAIProvider(server.url, "k", "fake-model", timeout=5, max_retries=0)
    check = asyncio.run(provider.check_connection())
    assert not check.ok and f"try {server.base_url}" in check.message
    error = failure(provider)
    assert error.kind == "bad_request" and "/v1" in str(error)


def test_check_connection_reports_a_dead_server():
    url = f"http://127.0.0.1:{closed_port()}/v1"
    check = asyncio.run(OpenAIProvider(url, "k", "m", timeout=2, max_retries=0).check_connection())
    assert not check.ok and url in check.message and check.models == ()


def test_latency_injection_is_felt_by_the_client():
    with OpenAIServer(latency=0.3, per_token=0.002) as slow:
        provider = provider_for(slow)
        start = time.monotonic()
        result, _ = complete(provider)
        elapsed = time.monotonic() - start
        slow.wait_idle()
    tokens = estimate_tokens(result.text)
    assert elapsed >= 0.3 + 0.002 * tokens * 0.9
    (request,) = slow.chat_requests
    assert request["end"] - request["start"] >= 0.3 + 0.002 * tokens * 0.9
    assert request["status"] == 200


def test_concurrent_calls_share_one_loop(server):
    provider = provider_for(server)

    async def many() -> list:
        calls = [provider.complete(MESSAGES, Sampling(64, seed=i)) for i in range(60)]
        return await asyncio.gather(*calls)

    results = asyncio.run(many())
    assert [r.text for r in results] == [fake_reply(MESSAGES, i)[: 64 * 4] for i in range(60)]
    assert len(server.chat_requests) == 60


def test_one_provider_works_from_many_event_loops(server):
    # A client shared across loops fails on the second loop (its pooled connection belongs
    # to the first, closed loop); the provider keeps one client per loop.
    provider = provider_for(server)
    assert complete(provider)[0].text == complete(provider)[0].text
    errors: list[BaseException] = []
    texts: list[str] = []

    def in_thread() -> None:
        try:
            texts.append(complete(provider)[0].text)
        except ProviderError as error:
            errors.append(error)

    threads = [threading.Thread(target=in_thread) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and texts == [fake_reply(MESSAGES, 7)] * 4


def test_reasoning_model_parameters(server):
    result, _ = complete(provider_for(server, model="o3-mini"))
    assert result.text
    body = server.chat_requests[-1]["body"]
    assert body["max_completion_tokens"] == 512
    assert not {"max_tokens", "temperature", "seed", "top_p", "reasoning_effort"} & set(body)
    complete(provider_for(server, reasoning_effort="low"))
    body = server.chat_requests[-1]["body"]
    assert body["reasoning_effort"] == "low" and "temperature" not in body
    assert is_reasoning_model("openai/gpt-5-mini") and not is_reasoning_model("gpt-4o")


def test_endpoint_rejecting_stream_options_is_retried_without_it():
    with OpenAIServer(accept_stream_options=False) as strict:
        provider = provider_for(strict)
        result, _ = complete(provider)
        assert result.text == fake_reply(MESSAGES, 7)
        assert result.usage.estimated  # no usage chunk without stream_options
        assert result.usage.completion_tokens == estimate_tokens(result.text)
        strict.wait_idle()
        assert [r["status"] for r in strict.chat_requests] == [400, 200]
        complete(provider)  # remembered: no second refusal
        assert [r["status"] for r in strict.chat_requests] == [400, 200, 200]


# ----- answers that are not errors ---------------------------------------------------------


def test_reasoning_content_is_kept_apart(server):
    for stream in (True, False):
        server.inject("reasoning")
        result, deltas = complete(provider_for(server, stream=stream))
        assert result.text == fake_reply(MESSAGES, 7) == "".join(deltas)
        assert result.reasoning.startswith("Hmm, the user wants an answer (seed 7)")
        assert result.reasoning not in result.text
        assert result.usage.reasoning_tokens == estimate_tokens(result.reasoning) > 0
        assert result.usage.completion_tokens == (
            estimate_tokens(result.text) + result.usage.reasoning_tokens
        )


def test_missing_usage_is_estimated(server):
    server.inject("no_usage")
    result, _ = complete(provider_for(server))
    assert result.usage == Usage(
        estimate_prompt_tokens(MESSAGES), estimate_tokens(result.text), 0, estimated=True
    )


def test_finish_length_returns_the_text(server):
    server.inject("length")
    result, _ = complete(provider_for(server))
    assert result.finish_reason == "length"
    assert result.text == fake_reply(MESSAGES, 7)[: len(fake_reply(MESSAGES, 7)) // 2]
    result, _ = complete(provider_for(server), Sampling(max_tokens=5, seed=7))
    assert result.finish_reason == "length" and len(result.text) == 20


def test_empty_content_is_not_an_error(server):
    server.inject("empty")
    result, deltas = complete(provider_for(server))
    assert result.text == "" and deltas == [] and result.finish_reason == "stop"


# ----- failures ----------------------------------------------------------------------------


def test_wrong_key_says_so_without_the_key():
    with OpenAIServer(api_key="sk-the-right-one") as guarded:
        provider = provider_for(guarded, api_key=PLANTED_KEY)
        errors = [failure(provider)]
        with pytest.raises(ProviderError) as listing:
            asyncio.run(provider.list_models())
        errors.append(listing.value)
        ok = provider_for(guarded, api_key="sk-the-right-one")
        assert complete(ok)[0].text
    secret_parts = {
        PLANTED_KEY[i:j]
        for i in range(len(PLANTED_KEY))
        for j in range(i + 4, len(PLANTED_KEY) + 1)
        if not PLANTED_KEY[i:j].isdigit() or j - i > 5  # short digit runs can be in a port
    }
    for error in errors:
        text = str(error)
        assert error.kind == "auth" and not error.retryable
        assert "API key" in text and "OPENAI_API_KEY" in text
        assert not [part for part in secret_parts if part in text]
        assert "3456" not in text.replace(guarded.base_url, "")
    assert PLANTED_KEY not in repr(provider)


def test_unknown_model_lists_the_served_ones(server):
    error = failure(provider_for(server, model="gpt-nope"))
    assert error.kind == "model_not_found"
    assert "gpt-nope" in str(error) and "fake-model" in str(error) and "o3-mini" in str(error)


def test_rate_limit_honours_retry_after_then_succeeds(server):
    server.inject("429", retry_after=1)
    start = time.monotonic()
    result, _ = complete(provider_for(server, max_retries=1))
    # The first backoff is at most 0.5 s, so a wait near 1 s is Retry-After's.
    assert time.monotonic() - start >= 0.9
    assert result.text == fake_reply(MESSAGES, 7)
    assert [r["status"] for r in server.chat_requests] == [429, 200]


def test_rate_limit_that_persists(server):
    server.inject("429", count=2, retry_after=0.05)
    error = failure(provider_for(server, max_retries=1))
    assert error.kind == "rate_limited" and error.retryable
    assert "429" in str(error) and "after 1 retry" in str(error)
    assert len(server.chat_requests) == 2


def test_server_errors(server):
    server.inject("500")
    error = failure(provider_for(server))
    assert error.kind == "server" and error.retryable
    assert "HTTP 500" in str(error) and "error while processing" in str(error)
    server.inject("502")
    error = failure(provider_for(server))
    assert error.kind == "server" and "HTTP 502" in str(error) and "proxy" in str(error)


def test_server_error_retried(server):
    server.inject("500")
    result, _ = complete(provider_for(server, max_retries=1))
    assert result.text and [r["status"] for r in server.chat_requests] == [500, 200]


def test_timeout_names_the_seconds(server):
    server.inject("timeout")
    start = time.monotonic()
    error = failure(provider_for(server, timeout=0.5))
    assert time.monotonic() - start < 3
    assert error.kind == "timeout" and "0.5 s" in str(error) and server.base_url in str(error)


def test_stream_that_stalls_times_out(server):
    server.inject("stall")
    error = failure(provider_for(server, timeout=0.5))
    assert error.kind == "timeout" and "stalled" in str(error)


def test_malformed_responses_are_protocol_errors(server):
    cases = [
        ({"stream": False}, {}),  # invalid JSON with a JSON content type
        ({"stream": False}, {"body": "<html>Login</html>", "content_type": "text/html"}),
        ({"stream": False}, {"body": '{"hello": "world"}'}),  # JSON, but not a completion
        ({"stream": True}, {}),  # an SSE event that is not JSON
        ({"stream": True}, {"body": "<html>Login</html>", "content_type": "text/html"}),
    ]
    for options, fault in cases:
        server.inject("malformed", **fault)
        error = failure(provider_for(server, **options))
        assert error.kind == "protocol", (options, fault, str(error))
        assert "not the OpenAI chat protocol" in str(error)


def test_stream_cut_mid_way(server):
    server.inject("cut")
    provider = provider_for(server)
    deltas: list[str] = []
    with pytest.raises(ProviderError) as caught:
        asyncio.run(provider.complete(MESSAGES, SAMPLING, deltas.append))
    assert caught.value.kind == "connection" and caught.value.retryable
    assert "cut off mid-way" in str(caught.value)
    assert deltas and len("".join(deltas)) < len(fake_reply(MESSAGES, 7))


def test_connection_reset(server):
    server.inject("reset")
    error = failure(provider_for(server))
    assert error.kind == "connection" and server.base_url in str(error)
    assert "broke before the answer was complete" in str(error)
    server.inject("cut")  # a JSON body cut short is the same kind of failure
    error = failure(provider_for(server, stream=False))
    assert error.kind == "connection" and "broke" in str(error)


def test_content_filter_is_an_error(server):
    server.inject("content_filter")
    error = failure(provider_for(server))
    assert error.kind == "content_filter" and "content filter" in str(error)


def test_context_too_long(server):
    server.inject("context_length")
    error = failure(provider_for(server))
    assert error.kind == "context_length" and not error.retryable
    assert "context window" in str(error) and "4096" in str(error)


def test_cannot_connect_names_the_url():
    url = f"http://127.0.0.1:{closed_port()}/v1"
    error = failure(OpenAIProvider(url, "k", "fake-model", timeout=2, max_retries=0))
    assert error.kind == "connection" and error.retryable
    assert url in str(error) and "running" in str(error)


@pytest.mark.parametrize("bad", ["localhost:8080/v1", "127.0.0.1", "http://", "ftp://host/v1"])
def test_malformed_base_url_is_refused_at_construction(bad):
    with pytest.raises(ProviderError) as caught:
        OpenAIProvider(bad, "k", "m")
    assert caught.value.kind == "bad_request" and bad in str(caught.value)


def test_base_url_trailing_slash_is_stripped():
    assert OpenAIProvider("http://h:1/v1/", "k", "m").base_url == "http://h:1/v1"


# ----- several choices from one request ----------------------------------------------------


def is_probe(request: dict) -> bool:
    """The one-token request for two choices that learns whether the endpoint honours n."""
    return request["body"].get("max_tokens") == 1 and request["body"].get("n") == 2


def test_complete_n_uses_one_request_when_n_is_honoured(server):
    memory = KnownCapabilities(server.base_url, "fake-model", n=True)
    provider = provider_for(server, memory=memory)
    seen: dict[int, list[str]] = {}
    results = asyncio.run(
        provider.complete_n(
            MESSAGES, SAMPLING, 3, lambda i, text: seen.setdefault(i, []).append(text)
        )
    )
    assert [r.text for r in results] == [fake_reply(MESSAGES, s) for s in (7, 8, 9)]
    assert {i: "".join(parts) for i, parts in seen.items()} == {
        i: r.text for i, r in enumerate(results)
    }
    assert len(server.chat_requests) == 1 and server.chat_requests[0]["body"]["n"] == 3
    assert provider.supports_n is True
    total = sum(estimate_tokens(r.text) for r in results)
    assert sum(r.usage.completion_tokens for r in results) == total
    assert all(r.usage.prompt_tokens == estimate_prompt_tokens(MESSAGES) for r in results)


@pytest.mark.parametrize("support_n", [True, False])
def test_complete_n_learns_n_beside_separate_calls_while_unknown(support_n):
    """Unknown: the choices go out as separate calls and a probe beside them learns n; then
    a server that honours it gets one request, one that ignores it separate calls."""
    with OpenAIServer(support_n=support_n) as server:
        provider = provider_for(server)
        assert provider.supports_n is None

        async def twice() -> list[list]:
            first = await provider.complete_n(MESSAGES, SAMPLING, 3)
            await asyncio.sleep(0.2)  # the probe is never waited for; by now it answered
            return [first, await provider.complete_n(MESSAGES, SAMPLING, 2)]

        first, second = asyncio.run(twice())
        requests = server.wait_idle()
    assert [r.text for r in first] == [fake_reply(MESSAGES, s) for s in (7, 8, 9)]
    assert [r.text for r in second] == [fake_reply(MESSAGES, s) for s in (7, 8)]
    assert provider.supports_n is support_n
    assert len([r for r in requests if is_probe(r)]) == 1
    calls = [r["body"] for r in requests if not is_probe(r)]
    assert [b.get("n", 1) for b in calls[:3]] == [1, 1, 1]
    assert sorted(b["seed"] for b in calls[:3]) == [7, 8, 9]
    if support_n:
        assert [b.get("n", 1) for b in calls[3:]] == [2]
    else:
        assert sorted(b["seed"] for b in calls[3:]) == [7, 8]
        assert not any("n" in b for b in calls[3:])
