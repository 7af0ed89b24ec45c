"""The engine through the real openai client and the loopback server."""

import asyncio

import pytest
from openai_server import OpenAIServer, peak_in_flight

from pdr_core.config import RunConfig
from pdr_core.providers.openai import OpenAIProvider
from pdr_core.run.methods import run
from pdr_core.testing import KnownCapabilities

QUESTION = "What is 17 * 3 + 1?"


@pytest.mark.parametrize("support_n", [True, False])
def test_round_one_drafts_share_one_request_where_n_is_honoured(support_n):
    with OpenAIServer(support_n=support_n) as server:
        memory = KnownCapabilities(server.base_url, "fake-model", n=support_n)
        provider = OpenAIProvider(server.base_url, "sk-x", "fake-model", max_retries=0,
                                  memory=memory)
        config = RunConfig(method="pdr", width=4, depth=2, distill="topk", k=2)
        trace = asyncio.run(run(QUESTION, config, provider, reference="52"))
        requests = server.chat_requests
    assert trace.status == "completed"
    drafts = [n for n in trace.nodes if n.stage == "draft"]
    assert len(drafts) == 4 and all(n.status == "ok" and n.text for n in drafts)
    # distinct choices, seeds branch-by-branch as with separate calls
    assert len({n.text for n in drafts}) == 4
    ns = [r["body"].get("n", 1) for r in requests]
    # known to honour n: one request for the four drafts; known not to: four
    assert ns == ([4, 1] if support_n else [1] * 5)
    assert trace.budget.calls == 5


def test_a_fresh_provider_sends_round_one_as_separate_calls_and_learns_n_beside_them():
    """Nothing known: the drafts do not wait on a shared request that may come back with
    one choice; a one-token probe goes beside them and is never waited for."""
    with OpenAIServer(support_n=True, latency=0.2) as server:
        provider = OpenAIProvider(server.base_url, "sk-x", "fake-model", max_retries=0)
        config = RunConfig(method="vote", width=4)

        async def run_then_settle():
            trace = await run(QUESTION, config, provider, reference="52")
            # The probe queued behind the four drafts in their four slots: the run does not
            # wait for it, but a process about to end lets it answer.
            assert provider.supports_n is None
            await provider.settle()
            return trace

        trace = asyncio.run(run_then_settle())
        requests = server.wait_idle()
    assert trace.status == "completed"
    drafts = [r for r in requests if r["body"]["max_tokens"] == config.max_tokens]
    [probe] = [r for r in requests if r["body"]["max_tokens"] == 1]
    assert [r["body"].get("n", 1) for r in drafts] == [1] * 4
    assert probe["body"]["n"] == 2
    assert provider.supports_n is True


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
    assert trace.status == "completed"
    # the six drafts, and the probe (one token) that learns n behind them in their slots
    assert len([r for r in requests if r["body"]["max_tokens"] != 1]) == 6
    assert peak_in_flight(requests) == 2
