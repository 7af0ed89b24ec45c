"""Tournament and generative selection: bracket, votes, tie rule, parsed choice, fallback."""

import asyncio
import re

import pytest
from conftest import QUESTION, run_fake
from openai_server import OpenAIServer

from pdr_core.config import RunConfig
from pdr_core.providers.openai import OpenAIProvider
from pdr_core.run.methods import run
from pdr_core.run.operators import Draft
from pdr_core.run.selection import group_winner, parse_choice
from pdr_core.testing import FakeProvider, KnownCapabilities, default_answer

_CANDIDATE = re.compile(r"### Attempt (\d+)\nLet me work through this carefully \(seed (\d+)\)")


def _candidates(messages):
    """(number, seed) of each candidate in a judge or select prompt, else []."""
    user = next(m["content"] for m in messages if m["role"] == "user")
    return [(int(n), int(s)) for n, s in _CANDIDATE.findall(user)]


def judge_rule(messages, seed):
    """Judges name the candidate whose seed is largest modulo 4 (the first of equals),
    except that a judge whose own seed is a multiple of 3 names candidate 1."""
    candidates = _candidates(messages)
    if not candidates:
        return default_answer(messages, seed)
    if seed % 3 == 0:
        return "1"
    return str(max(candidates, key=lambda c: (c[1] % 4, -c[0]))[0])


@pytest.mark.parametrize(
    "text, count, choice",
    [("So the best is \\boxed{3}.", 4, 3), ("\\boxed{Candidate 2}", 4, 2),
     ("**Answer:** attempt #4", 4, 4), ("\\boxed{(1)}", 2, 1),
     ("I prefer Candidate 1 over candidate 2; candidate 2 it is.", 3, 2),
     ("\\boxed{52}", 4, None), ("\\boxed{5}", 4, None), ("no idea", 4, None),
     ("\\boxed{0}", 4, None)],
)
def test_a_choice_is_parsed_robustly_and_only_in_range(text, count, choice):
    assert parse_choice(text, count) == choice


def _draft(i):
    return Draft(f"r1-draft-{i}", i, f"candidate {i}", str(i))


def test_tie_rule_the_earliest_of_the_most_voted_advances():
    members = [_draft(0), _draft(1), _draft(2)]
    votes = [Draft(f"j{i}", i, f"\\boxed{{{c}}}", None) for i, c in enumerate([3, 2, 3, 2])]
    result = group_winner(members, votes)
    assert (result.winner.node_id, result.votes, result.tie) == ("r1-draft-1", 2, True)
    result = group_winner(members, votes[:3])
    assert (result.winner.node_id, result.votes, result.tie) == ("r1-draft-2", 2, False)
    # no judge's choice can be read: a tie of all, the first member advances
    result = group_winner(members, [Draft("j", 0, "\\boxed{52}", None)])
    assert (result.winner.node_id, result.votes, result.tie) == ("r1-draft-0", 0, True)


def test_tournament_bracket_groups_votes_and_majority_winner_over_http():
    config = RunConfig(method="tournament", width=6, group=3, votes=3)
    assert config.schedule == (6, 6, 3) and config.calls == 15
    with OpenAIServer(answer=judge_rule) as server:
        provider = OpenAIProvider(server.base_url, "sk-x", "fake-model", max_retries=0,
                                  memory=KnownCapabilities(server.base_url, "fake-model", n=True))
        trace = asyncio.run(run(QUESTION, config, provider, reference="52"))
        requests = server.chat_requests
    assert trace.status == "completed"
    assert sum(r["body"].get("n", 1) for r in requests) == 15
    judges = {n.id: n for n in trace.nodes if n.stage == "judge"}
    assert all(n.answer is None and n.correct is None for n in judges.values())
    groups = {}
    for node in judges.values():
        groups.setdefault((node.round, node.branch // 3), []).append(node)
    assert {key: len(nodes) for key, nodes in groups.items()} == {
        (2, 0): 3, (2, 1): 3, (3, 0): 3}
    assert {tuple(n.parent_ids) for n in groups[(2, 0)]} == {
        ("r1-draft-0", "r1-draft-1", "r1-draft-2")}
    assert {tuple(n.parent_ids) for n in groups[(2, 1)]} == {
        ("r1-draft-3", "r1-draft-4", "r1-draft-5")}
    # group winners (seed mod 4 largest, two judges of three): drafts 2 and 3 meet in
    # round 3, where draft 3 wins; its answer (53, wrong) is the run's, not the vote's 52
    assert {tuple(n.parent_ids) for n in groups[(3, 0)]} == {("r1-draft-2", "r1-draft-3")}
    assert trace.final_answer == trace.node("r1-draft-3").answer == "53"
    assert "r1-draft-3 won" in trace.final_selection
    assert "round 2 group 1: r1-draft-2 with 2 of 3 vote(s)" in trace.final_selection


def test_tournament_split_votes_go_to_the_earliest_and_odd_candidates_get_a_bye():
    def split(messages, seed):  # two judges per group, one for each candidate
        return str(seed % 2 + 1) if _candidates(messages) else default_answer(messages, seed)

    provider = FakeProvider(answer=split)
    config = RunConfig(method="tournament", width=3, group=2, votes=2)
    trace = run_fake(config, provider)
    assert len(provider.calls) == config.calls == 3 + 2 + 2
    round2 = [n for n in trace.nodes if n.round == 2]
    assert {tuple(n.parent_ids) for n in round2} == {("r1-draft-0", "r1-draft-1")}
    round3 = [n for n in trace.nodes if n.round == 3]
    assert {tuple(n.parent_ids) for n in round3} == {("r1-draft-0", "r1-draft-2")}
    assert "a tie to the earliest" in trace.final_selection
    assert "r1-draft-0 won" in trace.final_selection


def _select_rule(choice):
    def rule(messages, seed):
        if not _candidates(messages):
            return default_answer(messages, seed)
        return choice(_candidates(messages))
    return rule


def test_generative_selection_the_parsed_choice_is_the_answer_over_http():
    # The selector names the candidate drafted with seed 3 (the fake's wrong answer, 53).
    rule = _select_rule(lambda cs: f"Candidate {next(n for n, s in cs if s % 4 == 3)}")
    with OpenAIServer(answer=rule) as server:
        provider = OpenAIProvider(server.base_url, "sk-x", "fake-model", max_retries=0,
                                  memory=KnownCapabilities(server.base_url, "fake-model", n=True))
        trace = asyncio.run(run(QUESTION, RunConfig(method="select", width=4), provider,
                                reference="52"))
        requests = server.chat_requests
    assert sum(r["body"].get("n", 1) for r in requests) == 5
    [select] = [n for n in trace.nodes if n.stage == "select"]
    assert select.parent_ids == [f"r1-draft-{i}" for i in range(4)] and select.answer is None
    assert trace.final_answer == trace.node("r1-draft-3").answer == "53"
    assert trace.correct is False
    assert trace.final_selection == ("generative selection: r2-select-0 chose candidate 4 of "
                                     "4, r1-draft-3")


def test_an_unparseable_choice_falls_back_to_a_vote_visibly():
    provider = FakeProvider(answer=_select_rule(lambda cs: "the nicest one"))
    trace = run_fake(RunConfig(method="select", width=4), provider)
    assert trace.status == "completed" and trace.final_answer == "52"
    assert trace.final_selection.startswith(
        "generative selection fell back: r2-select-0 named no candidate, so majority vote")


def test_a_failed_select_call_falls_back_to_a_vote_visibly():
    def fail(messages, seed):
        return "boom" if _candidates(messages) else None

    trace = run_fake(RunConfig(method="select", width=3), FakeProvider(fail=fail))
    assert trace.status == "completed" and trace.final_answer == "52"
    assert trace.node("r2-select-0").status == "failed"
    assert trace.final_selection.startswith("generative selection fell back: r2-select-0 "
                                            "failed")
