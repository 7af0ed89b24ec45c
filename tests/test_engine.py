"""The engine and the methods, with the fake provider at our own seam."""

import asyncio
from collections import Counter

import pytest
from conftest import QUESTION, REFERENCE, run_fake

from pdr_core.config import ConfigError, RunConfig
from pdr_core.events import NodeDelta, NodeFailed, RunFinished
from pdr_core.extraction import extract_answer
from pdr_core.fold import fold
from pdr_core.run.methods import run
from pdr_core.testing import FakeProvider
from pdr_core.tokens import estimate_tokens


def stage_counts(trace):
    return Counter((n.stage, n.round) for n in trace.nodes)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"method": "pdr", "width": 4, "depth": 3},
            {("draft", 1): 4, ("distill", 1): 1, ("refine", 2): 4, ("distill", 2): 1,
             ("final", 3): 1},
        ),
        (
            {"method": "pdr", "depth": 3, "width_schedule": (8, 4, 1), "distill": "topk"},
            {("draft", 1): 8, ("distill", 1): 1, ("refine", 2): 4, ("distill", 2): 1,
             ("final", 3): 1},
        ),
        (
            {"method": "pdr", "depth": 3, "width_schedule": (6, 3, 2), "distill": "random-k"},
            {("draft", 1): 6, ("distill", 1): 3, ("refine", 2): 3, ("distill", 2): 2,
             ("final", 3): 2},
        ),
        (
            {"method": "pdr", "depth": 2, "width": 3, "distill": "per-sample-topk", "k": 2},
            {("draft", 1): 3, ("distill", 1): 1, ("final", 2): 1},
        ),
        ({"method": "pdr", "width": 5, "depth": 1}, {("draft", 1): 5}),
        (
            {"method": "sr", "depth": 3},
            {("draft", 1): 1, ("refine", 2): 1, ("final", 3): 1},
        ),
        (
            {"method": "sr", "depth": 3, "sr_summary": True},
            {("draft", 1): 1, ("distill", 1): 1, ("refine", 2): 1, ("distill", 2): 1,
             ("final", 3): 1},
        ),
        ({"method": "single", "width": 8, "depth": 3}, {("final", 1): 1}),
        ({"method": "vote", "width": 7}, {("draft", 1): 7}),
    ],
)
def test_node_counts_per_stage(kwargs, expected):
    config = RunConfig(**kwargs)
    provider = FakeProvider()
    trace = run_fake(config, provider)
    assert trace.status == "completed"
    assert dict(stage_counts(trace)) == expected
    assert len(provider.calls) == config.calls == trace.budget.calls
    assert trace.final_answer is not None


def test_rounds_see_only_question_and_workspace():
    trace = run_fake(RunConfig(method="pdr", width=4, depth=3, distill="summary"))
    drafts = [n for n in trace.nodes if n.stage == "draft"]
    for n in drafts:
        assert n.parent_ids == []
        assert QUESTION in n.messages[-1]["content"]
        assert "Workspace" not in n.messages[-1]["content"]
    summary1 = trace.node("r1-distill-0")
    assert summary1.parent_ids == [d.id for d in drafts]
    assert summary1.usage["completion_tokens"] > 0
    # every draft's text went into the summary call, with no vote tally or answer labels
    prompt = summary1.messages[-1]["content"]
    assert all(d.text in prompt for d in drafts)
    assert "3 attempts" not in prompt and "(answer:" not in prompt
    for n in trace.nodes:
        if n.stage in ("refine", "final"):
            source = trace.node(n.parent_ids[0])
            assert n.parent_ids == [f"r{n.round - 1}-distill-0"]
            assert source.text in n.messages[-1]["content"]
            # no draft text of an earlier round leaks in except through the workspace
            assert all(d.text not in n.messages[-1]["content"] for d in drafts)


def test_topk_prefers_largest_cluster_then_shorter():
    # seeds 0..3 -> branch 3 answers 53; the 52 cluster wins, ties go to shorter text
    trace = run_fake(RunConfig(method="pdr", width=4, depth=2, distill="topk", k=2))
    workspace = trace.node("r1-distill-0")
    assert workspace.call is False and workspace.tokens == 0
    assert workspace.parent_ids == ["r1-draft-0", "r1-draft-1"]
    assert "Attempt 1 (answer: 52)" in workspace.text
    assert "answer: 53" not in workspace.text
    assert trace.node("r2-final-0").parent_ids == ["r1-distill-0"]


def test_per_sample_topk_gives_each_generation_its_own_selection():
    config = RunConfig(method="pdr", depth=2, width_schedule=(4, 3), distill="per-sample-topk",
                       k=2)
    trace = run_fake(config)
    parents = {n.id: n.parent_ids for n in trace.nodes if n.stage == "distill"}
    # ranking: 52-cluster by branch (0, 1, 2), then the 53 draft (3); window over top 4
    assert parents == {
        "r1-distill-0": ["r1-draft-0", "r1-draft-1"],
        "r1-distill-1": ["r1-draft-1", "r1-draft-2"],
        "r1-distill-2": ["r1-draft-2", "r1-draft-3"],
    }
    for branch in range(3):
        refine = trace.node(f"r2-final-{branch}")
        assert refine.parent_ids == [f"r1-distill-{branch}"]
        assert trace.node(f"r1-distill-{branch}").text in refine.messages[-1]["content"]


def test_random_k_is_seeded_and_varies_per_generation():
    config = RunConfig(method="pdr", depth=2, width_schedule=(6, 4), distill="random-k", k=2)
    first = run_fake(config)
    again = run_fake(config)
    other = run_fake(RunConfig(method="pdr", depth=2, width_schedule=(6, 4),
                               distill="random-k", k=2, seed=7))

    def selections(trace):
        return [n.parent_ids for n in trace.nodes if n.stage == "distill"]

    assert selections(first) == selections(again)
    assert all(len(p) == 2 and len(set(p)) == 2 for p in selections(first))
    assert len({tuple(p) for p in selections(first)}) > 1
    assert selections(first) != selections(other)


def test_workspace_is_bounded_so_context_does_not_grow_with_depth():
    for distill in ("summary", "topk"):
        config = RunConfig(method="pdr", width=4, depth=6, distill=distill, k=2,
                           workspace_tokens=32, max_tokens=512)
        trace = run_fake(config)
        prompt = {n.round: n.messages[-1]["content"] for n in trace.nodes
                  if n.stage in ("refine", "final") and n.branch == 0}
        assert len(prompt[5]) <= len(prompt[2]) + 8, distill
        for n in trace.nodes:
            if n.stage == "distill" and not n.call:
                assert estimate_tokens(n.text) <= 32


def test_budget_arithmetic_by_hand():
    config = RunConfig(method="pdr", width=2, depth=2, distill="summary")
    trace = run_fake(config)
    by_id = {n.id: n.tokens for n in trace.nodes}
    d0, d1, s, f = by_id["r1-draft-0"], by_id["r1-draft-1"], by_id["r1-distill-0"], \
        by_id["r2-final-0"]
    assert all(t > 0 for t in (d0, d1, s, f))
    budget = trace.budget
    assert budget.b_total == d0 + d1 + s + f
    assert budget.b_seq == max(d0, d1) + s + f
    assert budget.calls == 4
    exported = trace.to_dict()["budget"]
    assert exported == {"b_seq": budget.b_seq, "b_total": budget.b_total, "calls": 4}


def test_failed_call_is_a_failed_node_and_the_round_goes_on():
    def fail(messages, seed):
        return "HTTP 500 from the endpoint" if seed == 2 else None

    provider = FakeProvider(fail=fail)
    trace = run_fake(RunConfig(method="pdr", width=4, depth=2, distill="summary"), provider)
    assert trace.status == "completed"
    failed = trace.node("r1-draft-2")
    assert failed.status == "failed" and failed.error == "HTTP 500 from the endpoint"
    assert failed.answer is None and failed.text  # what streamed before the failure is kept
    summary = trace.node("r1-distill-0")
    assert summary.parent_ids == ["r1-draft-0", "r1-draft-1", "r1-draft-3"]
    assert failed.text not in summary.messages[-1]["content"]


def test_round_where_every_call_fails_fails_the_run():
    provider = FakeProvider(fail=lambda messages, seed: "connection refused" if seed >= 1000
                            else None)
    trace = run_fake(RunConfig(method="pdr", width=3, depth=3, distill="topk", k=1), provider)
    assert trace.status == "failed"
    assert "round 2" in trace.error and "all 3 call(s) failed" in trace.error
    assert "connection refused" in trace.error
    assert [n.status for n in trace.nodes if n.round == 1] == ["ok"] * 3 + ["ok"]
    assert trace.final_answer is None


def test_failed_summary_call_fails_the_run_with_its_reason():
    provider = FakeProvider(
        fail=lambda messages, seed: "rate limited" if "Distill" in messages[-1]["content"]
        else None
    )
    trace = run_fake(RunConfig(method="pdr", width=2, depth=2), provider)
    assert trace.status == "failed" and "rate limited" in trace.error
    assert trace.node("r1-distill-0").status == "failed"


def test_cancellation_interrupts_and_keeps_finished_nodes():
    events = []
    provider = FakeProvider(delay=0.05)

    async def scenario():
        task = asyncio.create_task(run(QUESTION, RunConfig(method="pdr", width=3, depth=3),
                                       provider, events.append))
        while not any(getattr(e, "node_id", "") == "r1-distill-0" for e in events):
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    trace = fold(events)
    assert trace.status == "interrupted"
    drafts = [n for n in trace.nodes if n.stage == "draft"]
    assert len(drafts) == 3 and all(n.status == "ok" and n.text for n in drafts)
    summary = trace.node("r1-distill-0")
    assert summary.status == "failed" and summary.error_kind == "cancelled"
    assert isinstance(events[-1], RunFinished)


def test_total_budget_stops_before_a_call_could_pass_it():
    config = RunConfig(method="pdr", width=4, depth=3, distill="topk", k=2, max_tokens=100,
                       total_budget=700)
    provider = FakeProvider()
    trace = run_fake(config, provider)
    assert trace.stop_reason == "budget"
    assert trace.status == "completed"
    assert trace.budget.b_total <= 700
    # every launched call's worst case fitted: fewer calls than the full run makes
    assert len(provider.calls) < config.calls
    assert trace.final_answer == "52"


def test_budget_too_small_for_any_call_fails_clearly():
    trace = run_fake(RunConfig(method="single", max_tokens=100, total_budget=50))
    assert trace.status == "failed" and trace.stop_reason == "budget"
    assert "total budget 50" in trace.error
    assert trace.nodes == []


def test_concurrency_limit_is_respected():
    in_flight = peak = 0

    class Counting(FakeProvider):
        async def complete(self, messages, sampling, on_delta=None):
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                return await super().complete(messages, sampling, on_delta)
            finally:
                in_flight -= 1

    run_fake(RunConfig(method="vote", width=9, concurrency=3), Counting(delay=0.01))
    assert peak == 3


def test_events_fold_to_the_returned_trace_and_deltas_stream():
    events = []
    trace = run_fake(RunConfig(method="pdr", width=3, depth=2), sink=events.append)
    assert fold(events).to_dict() == trace.to_dict()
    deltas = [e for e in events if isinstance(e, NodeDelta) and e.node_id == "r1-draft-0"]
    assert len(deltas) >= 2
    assert "".join(d.text for d in deltas) == trace.node("r1-draft-0").text
    assert not any(isinstance(e, NodeFailed) for e in events)


def test_majority_vote_over_a_wide_last_round_ties_to_the_earliest():
    answers = {0: "7", 1: "9", 2: "9", 3: "7"}
    provider = FakeProvider(answer=lambda messages, seed: answers[seed % 1000])
    trace = run_fake(RunConfig(method="vote", width=4), provider, reference="7")
    assert trace.final_answer == "7" and trace.correct is True
    assert [extract_answer(n.text) for n in trace.nodes] == ["7", "9", "9", "7"]


def test_correctness_marked_per_node_and_run():
    trace = run_fake(RunConfig(method="vote", width=4), reference=REFERENCE)
    assert [n.correct for n in trace.nodes] == [True, True, True, False]
    assert trace.correct is True
    no_ref = run_fake(RunConfig(method="single"), reference=None)
    assert no_ref.correct is None and no_ref.nodes[0].correct is None


def test_empty_question_is_refused():
    with pytest.raises(ConfigError, match="question is empty"):
        run_fake(RunConfig(method="single"), question="   ")
