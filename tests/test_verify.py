"""Selection by verification: one call per draft, scores read robustly, the best reach on."""

import asyncio
import re

import pytest
from conftest import QUESTION, run_fake
from openai_server import OpenAIServer

from pdr_core.budgets import longest_token_path
from pdr_core.config import ConfigError, RunConfig
from pdr_core.providers.openai import OpenAIProvider
from pdr_core.run.methods import run
from pdr_core.run.preview import preview
from pdr_core.run.scores import parse_score, verify_flags
from pdr_core.run.workspace import workspace_summary
from pdr_core.testing import FakeProvider, default_answer

_SEED = re.compile(r"\(seed (\d+)\)")
# The score the verifier gives the draft written with each seed: seed 2's cannot be read.
SCORES = {0: "2", 1: "9", 2: "unsure", 3: "7"}


def _user(messages):
    return next(m["content"] for m in messages if m["role"] == "user")


def _is_verify(messages):
    return "score from 0" in _user(messages)


def verifier(messages, seed):
    """Drafts answer as usual; a verification scores the draft by the seed it was written
    with (SCORES)."""
    if not _is_verify(messages):
        return default_answer(messages, seed)
    solution = _user(messages).split("Solution:\n", 1)[1]
    return SCORES.get(int(_SEED.search(solution).group(1)), "5")


@pytest.mark.parametrize("text, score", [
    ("Checked. \\boxed{8}", 8.0), ("\\boxed{8/10}", 8.0), ("**Answer:** 7.5", 7.5),
    ("All steps hold; I give it a score of 6.", 6.0), ("\\boxed{3 out of 10}", 3.0),
    ("\\boxed{52}", None), ("\\boxed{unsure}", None), ("no idea", None), ("", None)])
def test_a_score_is_parsed_robustly_and_only_in_range(text, score):
    assert parse_score(text) == score


def test_verify_makes_one_call_per_draft_and_the_best_scored_reach_the_next_round():
    config = RunConfig(method="pdr", width=4, depth=2, distill="topk", k=2, selection="verify")
    assert config.calls == 4 + 4 + 1
    with OpenAIServer(answer=verifier) as server:
        provider = OpenAIProvider(server.base_url, "sk-x", "fake-model", max_retries=0)
        trace = asyncio.run(run(QUESTION, config, provider, reference="52"))
        requests = server.chat_requests
    assert trace.status == "completed"
    verifications = [r["body"]["messages"] for r in requests if _is_verify(r["body"]["messages"])]
    # one verification per draft, each reading exactly its own draft
    assert sorted(_SEED.findall(_user(m).split("Solution:\n", 1)[1]) for m in verifications) \
        == [["0"], ["1"], ["2"], ["3"]]
    verify = {n.id: n for n in trace.nodes if n.stage == "verify"}
    assert set(verify) == {f"r1-verify-{j}" for j in range(4)}
    assert all(verify[f"r1-verify-{j}"].parent_ids == [f"r1-draft-{j}"] for j in range(4))
    assert all(n.answer is None and n.correct is None for n in verify.values())
    # the two best scored (seed 1: 9, seed 3: 7) make the workspace, not consensus's 0 and 1
    distill = trace.node("r1-distill-0")
    assert distill.parent_ids[:2] == ["r1-draft-1", "r1-draft-3"]
    assert set(distill.parent_ids[2:]) == set(verify)
    [refine] = [r["body"]["messages"] for r in requests
                if "Workspace:" in _user(r["body"]["messages"])]
    assert sorted(_SEED.findall(_user(refine))) == ["1", "3"]
    # the unreadable score is flagged and ranks last, and the ranking is on the distill node
    assert verify_flags(verify["r1-verify-2"]) and not verify_flags(verify["r1-verify-1"])
    assert [row["node_id"] for row in distill.workspace["ranking"]["scores"]] == [
        "r1-draft-1", "r1-draft-3", "r1-draft-0", "r1-draft-2"]
    assert "r1-draft-2 unreadable" in workspace_summary(distill)
    # verify calls are paid for (B_total) and lie on the critical path (B_seq)
    budget = trace.budget
    assert budget.calls == 9
    assert budget.b_total == sum(n.tokens for n in trace.nodes if n.call)
    b_seq, path = longest_token_path(trace.nodes)
    assert b_seq == budget.b_seq and any(node_id in verify for node_id in path)
    final = trace.node("r2-final-0")
    assert b_seq == final.tokens + max(trace.node(f"r1-draft-{j}").tokens + verify[
        f"r1-verify-{j}"].tokens for j in range(4))


def test_per_sample_topk_draws_from_the_verified_ranking():
    provider = FakeProvider(answer=verifier)
    config = RunConfig(method="pdr", width=4, depth=3, width_schedule=(4, 2, 1),
                       distill="per-sample-topk", k=1, selection="verify")
    trace = run_fake(config, provider)
    assert len(provider.calls) == config.calls == 4 + 2 + 1 + 4 + 2
    # k=1 over a pool of the top 2: generation 0 gets the best (seed 1), generation 1 the next
    assert trace.node("r1-distill-0").parent_ids[0] == "r1-draft-1"
    assert trace.node("r1-distill-1").parent_ids[0] == "r1-draft-3"


def test_final_select_verify_takes_the_best_scored_answer_not_the_majority():
    scores = {0: "3", 1: "4", 2: "5", 3: "10"}  # seed 3 answers 53, the others 52

    def rule(messages, seed):
        if not _is_verify(messages):
            return default_answer(messages, seed)
        return scores[int(_SEED.search(_user(messages).split("Solution:\n", 1)[1]).group(1))]

    provider = FakeProvider(answer=rule)
    config = RunConfig(method="vote", width=4, final_select="verify")
    assert config.calls == 8
    trace = run_fake(config, provider)
    assert len(provider.calls) == 8
    assert trace.final_answer == "53"
    assert "r1-draft-3 scored best" in trace.final_selection
    assert {n.id for n in trace.nodes if n.stage == "verify"} == {
        f"r1-verify-{j}" for j in range(4)}
    # pdr's last round of width 1 has nothing to choose from: no verify call
    config = RunConfig(method="pdr", width=2, depth=2, final_select="verify")
    assert config.calls == 2 + 1 + 1
    assert len(run_fake(config, FakeProvider(answer=rule)).nodes) == 4


def test_verify_budget_preview_counts_the_calls_and_the_path():
    plain = RunConfig(method="pdr", width=4, depth=2, distill="topk", k=2)
    verified = RunConfig(method="pdr", width=4, depth=2, distill="topk", k=2,
                         selection="verify")
    a, b = preview(plain, QUESTION), preview(verified, QUESTION)
    assert b.calls == a.calls + 4
    assert b.worst_b_seq > a.worst_b_seq and b.worst_b_total > a.worst_b_total


@pytest.mark.parametrize("fields, field", [
    ({"method": "pdr", "distill": "summary", "selection": "verify"}, "selection"),
    ({"method": "pdr", "distill": "random-k", "selection": "verify"}, "selection"),
    ({"method": "sr", "selection": "verify"}, "selection"),
    ({"method": "sr", "final_select": "verify"}, "final_select"),
    ({"method": "pdr", "selection": "judged"}, "selection"),
])
def test_verify_where_it_does_not_apply_is_refused_with_what_to_fix(fields, field):
    with pytest.raises(ConfigError) as info:
        RunConfig(**fields)
    assert info.value.field == field


def test_select_and_final_select_verify_from_the_cli(tmp_path):
    from test_cli import cli

    db = tmp_path / "runs.sqlite"
    with OpenAIServer(answer=verifier) as server:
        endpoint = ("--base-url", server.base_url, "--model", "fake-model")
        ranked = cli("run", QUESTION, "--distill", "topk", "--k", "2", "--select", "verify",
                     *endpoint, db=db)
        assert ranked.returncode == 0, ranked.stderr
        assert "calls: 9" in ranked.stdout
        final = cli("run", QUESTION, "--method", "vote", "--width", "4", "--final-select",
                    "verify", *endpoint, db=db)
        assert final.returncode == 0, final.stderr
        # seed 1 scores 9: its answer (52) wins, and the selection says how
        assert "selection: verification of the 4 drafts of round 1: r1-draft-1 scored best" \
            in final.stdout
        refused = cli("run", QUESTION, "--select", "verify", *endpoint, db=db)
        assert refused.returncode != 0 and "selection='verify' is invalid" in refused.stderr
        assert sum(_is_verify(r["body"]["messages"]) for r in server.chat_requests) == 8


def test_the_run_page_runs_verify_selection_and_shows_the_scores(db):
    from test_app import app, start_run

    from pdr_core.store import Store

    at = app(FakeProvider(answer=verifier))
    at.radio(key="method").set_value("pdr").run()
    at.selectbox(key="distill").set_value("topk").run()
    at.slider(key="k").set_value(2).run()
    at.radio(key="selection").set_value("verify").run()
    config = RunConfig(method="pdr", width=4, depth=2, distill="topk", k=2,
                       selection="verify")
    assert [m.value for m in at.metric if m.label == "Calls"] == [str(config.calls)]
    start_run(at, QUESTION, "52")
    assert not at.exception, at.exception
    [stored] = Store(db).list_runs()
    trace = Store(db).get_trace(stored.id)
    assert trace.config["selection"] == "verify" and trace.budget.calls == config.calls
    assert trace.node("r1-distill-0").parent_ids[:2] == ["r1-draft-1", "r1-draft-3"]
