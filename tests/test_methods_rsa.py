"""Recursive self-aggregation: exact call structure through the real openai client."""

import asyncio

from conftest import QUESTION, run_fake
from openai_server import OpenAIServer

from pdr_core.config import RunConfig
from pdr_core.providers.openai import OpenAIProvider
from pdr_core.run.methods import run
from pdr_core.testing import FakeProvider, KnownCapabilities


def _user(messages):
    return next(m["content"] for m in messages if m["role"] == "user")


def test_rsa_8_3_2_makes_8_drafts_then_two_steps_of_8_each_over_3_distinct_outputs():
    config = RunConfig(method="rsa", width=8, k=3, depth=2, seed=5)
    with OpenAIServer() as server:
        provider = OpenAIProvider(server.base_url, "sk-x", "fake-model", max_retries=0,
                                  memory=KnownCapabilities(server.base_url, "fake-model", n=True))
        trace = asyncio.run(run(QUESTION, config, provider, reference="52"))
        requests = server.chat_requests
    assert trace.status == "completed"
    # 8 drafts (one request with n=8 where the endpoint honours n), then 8 + 8 aggregations
    assert sum(r["body"].get("n", 1) for r in requests) == 24
    aggregations = [r for r in requests if "candidate solutions" in _user(r["body"]["messages"])]
    assert len(aggregations) == 16 and all(r["body"].get("n", 1) == 1 for r in aggregations)
    by_round = {}
    for node in trace.nodes:
        by_round.setdefault(node.round, []).append(node)
    assert {r: (len(ns), {n.stage for n in ns}) for r, ns in by_round.items()} == {
        1: (8, {"draft"}), 2: (8, {"aggregate"}), 3: (8, {"aggregate"})}
    sent = [_user(r["body"]["messages"]) for r in aggregations]
    for step in (2, 3):
        previous = {n.id: n.text for n in by_round[step - 1]}
        assert len(set(previous.values())) == 8
        for node in by_round[step]:
            prompt = _user(node.messages)
            assert prompt in sent  # what the node records is what the endpoint got
            inside = [i for i, text in previous.items() if text in prompt]
            assert len(inside) == 3 and sorted(inside) == sorted(node.parent_ids)
            assert len(set(node.parent_ids)) == 3
    assert trace.final_selection.startswith("majority vote over the 8 drafts of round 3")


def test_rsa_subsets_follow_the_recorded_seed():
    def subsets(seed):
        trace = run_fake(RunConfig(method="rsa", width=6, k=2, depth=2, seed=seed))
        return [tuple(n.parent_ids) for n in trace.nodes if n.stage == "aggregate"]

    assert subsets(3) == subsets(3)
    assert subsets(3) != subsets(4)
    trace = run_fake(RunConfig(method="rsa", width=6, k=2, depth=2, seed=3))
    assert trace.config["seed"] == 3 and trace.config["depth"] == 2
    assert RunConfig.from_dict(trace.config).schedule == (6, 6, 6)


def test_rsa_final_aggregation_is_one_more_call_that_gives_the_answer():
    provider = FakeProvider()
    config = RunConfig(method="rsa", width=4, k=2, depth=1, final_select="aggregate")
    trace = run_fake(config, provider)
    assert len(provider.calls) == config.calls == 4 + 4 + 1
    [final] = [n for n in trace.nodes if n.stage == "final"]
    assert final.round == 3 and len(final.parent_ids) == 2
    assert {trace.node(p).round for p in final.parent_ids} == {2}
    assert trace.final_answer == final.answer
    assert final.id in trace.final_selection
