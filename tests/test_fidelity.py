"""PDR as published: SR refines one answer, B_seq on the call graph, the distiller's budget,
explicit selection. Through the real openai client and the loopback server where a request
matters, with the fake provider at the project's own seam elsewhere."""

import asyncio

from openai_server import OpenAIServer

from pdr_core.config import RunConfig
from pdr_core.methods import run
from pdr_core.providers.openai_compat import OpenAIProvider

QUESTION = "What is 17 * 3 + 1?"


def run_on_server(config: RunConfig, server: OpenAIServer, reference: str | None = "52"):
    provider = OpenAIProvider(server.base_url, "sk-x", "fake-model", max_retries=0)
    return asyncio.run(run(QUESTION, config, provider, reference=reference))


def user_prompt(request: dict) -> str:
    return [m for m in request["body"]["messages"] if m["role"] == "user"][-1]["content"]


# --- SR refines one answer --------------------------------------------------------------


def test_sr_depth_3_makes_three_calls_and_each_sees_the_previous_draft_once():
    with OpenAIServer() as server:
        trace = run_on_server(RunConfig(method="sr", depth=3), server)
        prompts = [user_prompt(r) for r in server.chat_requests]
    assert trace.status == "completed"
    assert len(prompts) == 3 and trace.budget.calls == 3
    assert [n.stage for n in trace.nodes] == ["draft", "refine", "final"]
    assert not any(n.stage == "distill" for n in trace.nodes)
    texts = {n.id: n.text for n in trace.nodes}
    for prompt in prompts:
        assert "several" not in prompt.lower() and "attempts" not in prompt.lower()
        for text in texts.values():
            assert prompt.count(text) <= 1
    # round r is conditioned on round r-1's answer alone
    assert trace.node("r2-refine-0").parent_ids == ["r1-draft-0"]
    assert trace.node("r3-final-0").parent_ids == ["r2-refine-0"]
    assert texts["r1-draft-0"] in prompts[1] and texts["r2-refine-0"] in prompts[2]
    assert texts["r1-draft-0"] not in prompts[2]


def test_sr_with_an_extractive_operator_still_shows_the_draft_once():
    with OpenAIServer() as server:
        trace = run_on_server(RunConfig(method="sr", depth=3, distill="topk", k=1), server)
        prompts = [user_prompt(r) for r in server.chat_requests]
    assert len(prompts) == 3 and not any(n.stage == "distill" for n in trace.nodes)
    draft = trace.node("r1-draft-0").text
    assert prompts[1].count(draft) == 1


def test_sr_summary_is_an_explicit_option_with_one_more_call_a_round():
    config = RunConfig(method="sr", depth=3, sr_summary=True)
    assert config.calls == 5
    with OpenAIServer() as server:
        trace = run_on_server(config, server)
        prompts = [user_prompt(r) for r in server.chat_requests]
    assert len(prompts) == 5
    notes = trace.node("r1-distill-0")
    refine = trace.node("r2-refine-0")
    assert refine.parent_ids == ["r1-distill-0", "r1-draft-0"]
    assert notes.text in prompts[2] and "Notes on it" in prompts[2]
    assert prompts[2].count(trace.node("r1-draft-0").text) == 1


def test_an_sr_run_saved_before_the_change_keeps_its_summary_calls():
    old = RunConfig(method="sr", depth=3).to_dict()
    del old["sr_summary"]
    assert RunConfig.from_dict(old).sr_summary is True
    assert RunConfig.from_dict({**old, "distill": "topk"}).sr_summary is False
