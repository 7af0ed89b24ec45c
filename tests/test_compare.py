"""Comparing two runs: settings, alignment, per-stage groups, results and the B_seq verdict."""

from __future__ import annotations

import copy

import pytest
from conftest import run_fake

from pdr_core.config import RunConfig
from pdr_core.render.compare import SAME, compare_runs, final_node, final_outputs, stage_figure
from pdr_core.testing import FakeProvider, default_answer


def always_fail(messages, seed):
    return "server exploded"


def positions(comparison):
    return [(r.round, r.stage, r.branch, r.a and r.a.id, r.b and r.b.id)
            for r in comparison.rows]


def test_pdr_width_4_depth_3_against_sr_depth_3():
    pdr = run_fake(RunConfig(method="pdr", width=4, depth=3))
    sr = run_fake(RunConfig(method="sr", depth=3, sr_summary=True))
    result = compare_runs(pdr, sr)
    assert positions(result) == [
        (1, "draft", 0, "r1-draft-0", "r1-draft-0"),
        (1, "draft", 1, "r1-draft-1", None),
        (1, "draft", 2, "r1-draft-2", None),
        (1, "draft", 3, "r1-draft-3", None),
        (1, "distill", 0, "r1-distill-0", "r1-distill-0"),
        (2, "refine", 0, "r2-refine-0", "r2-refine-0"),
        (2, "refine", 1, "r2-refine-1", None),
        (2, "refine", 2, "r2-refine-2", None),
        (2, "refine", 3, "r2-refine-3", None),
        (2, "distill", 0, "r2-distill-0", "r2-distill-0"),
        (3, "final", 0, "r3-final-0", "r3-final-0"),
    ]
    first = result.rows[0]
    assert first.a.tokens == pdr.node("r1-draft-0").tokens
    assert first.a.answer == "52" and first.a.correct is True and first.a.status == "ok"
    assert first.same_answer is True
    assert result.rows[1].same_answer is None  # one side only
    assert result.rows[4].same_answer is None  # workspaces carry no answer

    assert [(s.round, s.stage) for s in result.stages] == [
        (1, "draft"), (1, "distill"), (2, "refine"), (2, "distill"), (3, "final")]
    drafts = result.stages[0]
    assert (drafts.a.calls, drafts.b.calls) == (4, 1)
    assert drafts.a.tokens == sum(pdr.node(f"r1-draft-{i}").tokens for i in range(4))
    # seed 3 answers one more than right: three votes for 52, one for 53
    assert drafts.a.answers == (("52", 3), ("53", 1))
    assert drafts.b.answers == (("52", 1),)
    assert drafts.a.seconds is not None and drafts.a.seconds >= 0
    assert result.stages[1].a.answers == ()

    assert result.differences == ("method", "width_schedule")
    assert result.a.b_seq == pdr.budget.b_seq and result.b.b_seq == sr.budget.b_seq
    assert (result.a.calls, result.b.calls) == (11, 5)
    assert result.a.final_node_id == result.b.final_node_id == "r3-final-0"
    assert sr.budget.b_seq < pdr.budget.b_seq
    verdict = result.verdict
    assert verdict.lower == "B" and verdict.reason is None and verdict.cheaper_correct is True
    assert "Run B reached its answer at the lower B_seq" in verdict.text
    assert "It was right" in verdict.text
    assert result.same_question


def test_vote_against_single_lines_up_the_first_samples():
    vote = run_fake(RunConfig(method="vote", width=4))
    single = run_fake(RunConfig(method="single"))
    result = compare_runs(vote, single)
    # single's only node is its "final": it still lines up with the vote's first sample
    assert positions(result) == [
        (1, "draft/final", 0, "r1-draft-0", "r1-final-0"),
        (1, "draft", 1, "r1-draft-1", None),
        (1, "draft", 2, "r1-draft-2", None),
        (1, "draft", 3, "r1-draft-3", None),
    ]
    assert result.rows[0].a.stage == "draft" and result.rows[0].b.stage == "final"
    assert [s.label for s in result.stages] == ["R1 draft/final"]
    assert result.differences == ("method", "width_schedule")
    # every sample has the same prompt and reply length: both pay the same B_seq
    assert vote.budget.b_seq == single.budget.b_seq
    assert result.verdict.lower == SAME
    assert result.verdict.cheaper_correct is None
    assert "same B_seq" in result.verdict.text and "Both were right" in result.verdict.text
    # the same B_seq the other way round
    assert compare_runs(single, vote).verdict.lower == SAME


def test_vote_final_output_is_the_winning_voter():
    # seed 0 answers 7, the rest 52: 52 wins, and branch 1 is its first voter
    provider = FakeProvider(answer=lambda m, seed: "7" if seed == 0 else default_answer(m, seed))
    vote = run_fake(RunConfig(method="vote", width=3), provider)
    assert vote.final_answer == "52"
    assert final_node(vote).id == "r1-draft-1"
    single = run_fake(RunConfig(method="single"))
    text_a, text_b = final_outputs(vote, single)
    assert text_a == vote.node("r1-draft-1").text
    assert text_b == single.node("r1-final-0").text
    assert compare_runs(vote, single).a.final_node_id == "r1-draft-1"


def test_a_failed_node_is_shown_and_the_run_still_counts():
    provider = FakeProvider(fail=lambda m, seed: "boom" if seed == 1 else None)
    flawed = run_fake(RunConfig(method="pdr", width=3, depth=2), provider)
    clean = run_fake(RunConfig(method="pdr", width=3, depth=2))
    assert flawed.status == "completed"
    result = compare_runs(flawed, clean)
    assert result.differences == ()
    failed = next(r for r in result.rows if r.branch == 1 and r.round == 1)
    assert failed.a.status == "failed" and failed.a.answer is None
    assert failed.b.status == "ok"
    assert failed.same_answer is None
    drafts = result.stages[0]
    assert (drafts.a.failed, drafts.a.calls, drafts.a.answers) == (1, 3, (("52", 2),))
    assert (drafts.b.failed, drafts.b.answers) == (0, (("52", 3),))
    assert (result.a.failed, result.b.failed) == (1, 0)
    # two drafts to distill instead of three: A's critical path is shorter
    assert flawed.budget.b_seq < clean.budget.b_seq
    assert result.verdict.lower == "A"
    assert compare_runs(clean, flawed).verdict.lower == "B"


def test_a_failed_run_gives_no_verdict():
    failed = run_fake(RunConfig(method="sr", depth=2), FakeProvider(fail=always_fail))
    good = run_fake(RunConfig(method="sr", depth=2))
    assert failed.status == "failed"
    verdict = compare_runs(failed, good).verdict
    assert verdict.lower is None and verdict.reason == "run A failed"
    assert verdict.text.startswith("Can't say")
    assert compare_runs(good, failed).verdict.reason == "run B failed"
    both = compare_runs(failed, failed).verdict
    assert both.reason == "run A failed; run B failed"
    # nothing finished: no final node, empty output, every row failed
    assert final_node(failed) is None
    assert final_outputs(failed, good)[0] == ""
    result = compare_runs(failed, good)
    assert result.a.final_node_id is None
    assert all(r.a is None or r.a.status == "failed" for r in result.rows)


def test_no_answer_running_and_interrupted_runs_give_no_verdict():
    blank = run_fake(RunConfig(method="single"), FakeProvider(answer=lambda m, seed: ""))
    good = run_fake(RunConfig(method="single"))
    assert blank.status == "completed" and blank.final_answer is None
    assert compare_runs(good, blank).verdict.reason == "run B has no answer"
    # the blank run's output is still its final node's text
    assert final_outputs(good, blank)[1] == blank.node("r1-final-0").text
    running = copy.deepcopy(good)
    running.status, running.finished_at = "running", None
    result = compare_runs(running, good)
    assert result.verdict.reason == "run A is still running"
    assert result.a.seconds is None
    interrupted = copy.deepcopy(good)
    interrupted.status = "interrupted"
    assert compare_runs(good, interrupted).verdict.reason == "run B was interrupted"


def test_the_cheaper_run_can_be_wrong():
    # seed 3 makes the single pass answer 53
    wrong = run_fake(RunConfig(method="single", seed=3))
    pdr = run_fake(RunConfig(method="pdr", width=3, depth=2))
    assert wrong.correct is False
    verdict = compare_runs(wrong, pdr).verdict
    assert verdict.lower == "A" and verdict.cheaper_correct is False
    assert "It was wrong. Run B was right." in verdict.text
    # no reference: correctness unknown, nothing said about it
    unknown = compare_runs(run_fake(RunConfig(method="single"), reference=None),
                      run_fake(RunConfig(method="pdr", width=3, depth=2), reference=None))
    assert unknown.verdict.lower == "A" and unknown.verdict.cheaper_correct is None
    assert "right" not in unknown.verdict.text and "wrong" not in unknown.verdict.text


def test_settings_list_exactly_the_differing_keys():
    base = RunConfig(method="pdr", width=3, depth=2)
    other = RunConfig(method="pdr", width=3, depth=2, temperature=0.3, seed=5, max_tokens=2000,
                      model="fake-2")
    a, b = run_fake(base), run_fake(other)
    result = compare_runs(a, b)
    assert result.differences == ("max_tokens", "temperature", "seed", "model")
    shown = {s.key: (s.a, s.b) for s in result.settings}
    assert shown["width_schedule"] == ((3, 1), (3, 1))
    assert shown["seed"] == (0, 5) and shown["model"] == ("", "fake-2")
    assert len(result.settings) == 11
    assert compare_runs(a, a).differences == ()
    deeper = run_fake(RunConfig(method="pdr", width=3, depth=3, distill="topk", k=2,
                                total_budget=100_000, workspace_tokens=256))
    assert compare_runs(a, deeper).differences == (
        "width_schedule", "depth", "distill", "workspace_tokens", "total_budget")
    # a key missing from an imported trace's config reads as None
    stripped = copy.deepcopy(a)
    del stripped.config["model"]
    assert compare_runs(stripped, a).differences == ("model",)


def test_different_questions_are_flagged():
    a = run_fake(RunConfig(method="single"))
    b = run_fake(RunConfig(method="single"), question="What is 2 + 2?", reference="4")
    assert not compare_runs(a, b).same_question


def test_stage_figure_groups_a_beside_b():
    result = compare_runs(run_fake(RunConfig(method="pdr", width=3, depth=2)),
                     run_fake(RunConfig(method="single")))
    figure = stage_figure(result)
    assert [bar.name for bar in figure.data] == ["A", "B"]
    assert list(figure.data[0].x) == ["R1 draft/final", "R1 distill", "R2 final"]
    assert figure.data[1].y[1] is None  # single has no distill
    assert stage_figure(result, "seconds").data[0].y[0] is not None
    with pytest.raises(ValueError, match="tokens or seconds"):
        stage_figure(result, "dollars")
