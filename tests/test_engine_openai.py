"""The engine through the real openai client and the loopback server."""

import asyncio

import pytest
from openai_server import OpenAIServer, peak_in_flight

from pdr_core.config import RunConfig
from pdr_core.methods import run
from pdr_core.providers.openai_compat import OpenAIProvider

QUESTION = "What is 17 * 3 + 1?"


@pytest.mark.parametrize("support_n", [True, False])
def test_round_one_drafts_share_one_request_where_n_is_honoured(support_n):
    with OpenAIServer(support_n=support_n) as server:
        provider = OpenAIProvider(server.base_url, "sk-x", "fake-model", max_retries=0)
        config = RunConfig(method="pdr", width=4, depth=2, distill="topk", k=2)
        trace = asyncio.run(run(QUESTION, config, provider, reference="52"))
        requests = server.chat_requests
    assert trace.status == "completed"
    drafts = [n for n in trace.nodes if n.stage == "draft"]
    assert len(drafts) == 4 and all(n.status == "ok" and n.text for n in drafts)
    # distinct choices, seeds branch-by-branch as with separate calls
    assert len({n.text for n in drafts}) == 4
    ns = [r["body"].get("n", 1) for r in requests]
    if support_n:
        assert ns == [4, 1]
    else:
        # the first request asked for 4, got 1, and the other 3 went out as single calls
        assert ns[0] == 4 and len(requests) == 1 + 3 + 1
    assert trace.budget.calls == 5


def test_a_failed_shared_request_and_its_separate_calls_fail_each_draft_node():
    with OpenAIServer() as server:
        server.inject("500", 1 + 3)  # the shared request, then each answer on its own
        provider = OpenAIProvider(server.base_url, "sk-x", "fake-model", max_retries=0)
        trace = asyncio.run(run(QUESTION, RunConfig(method="vote", width=3), provider))
    assert trace.status == "failed"
    assert [n.status for n in trace.nodes] == ["failed"] * 3
    assert all("500" in n.error for n in trace.nodes)


def test_an_endpoint_that_ignores_n_never_gets_more_calls_at_once_than_the_limit():
    with OpenAIServer(support_n=False, latency=0.2) as server:
        provider = OpenAIProvider(server.base_url, "sk-x", "fake-model", max_retries=0)
        trace = asyncio.run(run(QUESTION, RunConfig(method="vote", width=6, concurrency=2),
                                provider))
        requests = server.wait_idle()
    assert trace.status == "completed" and len(requests) == 6
    assert peak_in_flight(requests) == 2
