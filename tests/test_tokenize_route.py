"""Counting workspace tokens with an endpoint's own tokenize route (vLLM, llama.cpp server),
learnt once per endpoint and remembered; the estimate, labelled, where there is none."""

from __future__ import annotations

import asyncio

from openai_server import OpenAIServer

from pdr_core.providers.tokenize_route import TokenizeRoute, tokenize_url
from pdr_core.store import Store
from pdr_core.testing import KnownCapabilities


def words(text: str) -> list[int]:
    return list(range(len(text.split())))


def test_the_route_is_at_the_servers_root() -> None:
    assert tokenize_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/tokenize"
    assert tokenize_url("http://host:8080/v1/") == "http://host:8080/tokenize"
    assert tokenize_url("http://host:8080") == "http://host:8080/tokenize"


def test_an_endpoint_with_the_route_counts_and_is_remembered(tmp_path) -> None:
    store = Store(tmp_path / "runs.sqlite")
    with OpenAIServer(tokenizer=words) as server:
        route = TokenizeRoute(server.base_url, "sk-x", "fake-model", store)
        assert asyncio.run(route.count("one two three four")) == 4
        [request] = [r for r in server.requests if r["path"] == "/tokenize"]
        assert request["body"]["prompt"] == "one two three four"
    # another process (a new store object) knows at once
    known = Store(tmp_path / "runs.sqlite").recall(server.base_url, "fake-model", "tokenize")
    assert known is not None and known.value is True


def test_an_endpoint_without_it_costs_one_request_ever(tmp_path) -> None:
    store = Store(tmp_path / "runs.sqlite")
    with OpenAIServer() as server:
        route = TokenizeRoute(server.base_url, "sk-x", "fake-model", store)
        assert asyncio.run(route.count("one two")) is None
        again = TokenizeRoute(server.base_url, "sk-x", "fake-model", Store(store.path))
        assert asyncio.run(again.count("three")) is None
        asked = [r for r in server.requests if r["path"] == "/tokenize"]
    assert len(asked) == 1  # the second process remembered the answer


def test_a_server_that_is_down_is_not_remembered_as_lacking_it() -> None:
    memory = KnownCapabilities("http://127.0.0.1:9/v1", "m")
    route = TokenizeRoute("http://127.0.0.1:9/v1", "sk-x", "m", memory, timeout=2)
    assert asyncio.run(route.count("text")) is None
    assert memory.recall("http://127.0.0.1:9/v1", "m", "tokenize") is None


def test_a_pdr_workspace_is_bounded_by_the_endpoints_own_count(tmp_path) -> None:
    from pdr_core.config import RunConfig
    from pdr_core.providers.openai import OpenAIProvider
    from pdr_core.run.methods import run

    store = Store(tmp_path / "runs.sqlite")
    with OpenAIServer(tokenizer=words) as server:
        provider = OpenAIProvider(server.base_url, "sk-x", "fake-model", max_retries=0,
                                  memory=store)
        config = RunConfig(method="pdr", width=2, depth=2, distill="topk", k=2,
                           workspace_tokens=16)
        trace = asyncio.run(run("What is 17 * 3 + 1?", config, provider))
        counted = [r for r in server.requests if r["path"] == "/tokenize"]
    assert trace.status == "completed" and counted
    [workspace] = [n for n in trace.nodes if n.stage == "distill"]
    assert workspace.workspace["counted"] == "exact"  # by the server, not estimated
