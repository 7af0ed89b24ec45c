"""Adaptive compute: a multi-round method stops after the round whose answers agree."""

import asyncio
import csv
import io

import pytest
from conftest import QUESTION, run_fake
from openai_server import OpenAIServer

from pdr_core.config import METHODS, ConfigError, RunConfig
from pdr_core.evals.export import results_csv
from pdr_core.evals.problems import Problem
from pdr_core.evals.records import create_evaluation
from pdr_core.evals.results import summarize
from pdr_core.evals.run import run_evaluation
from pdr_core.evals.spec import EvalSpec
from pdr_core.events import RunFinished
from pdr_core.fold import fold
from pdr_core.providers.openai import OpenAIProvider
from pdr_core.run.adaptive import agreement, savings
from pdr_core.run.methods import resume, run
from pdr_core.testing import FakeProvider, KnownCapabilities


def by_round(answers):
    """An answer rule from the call's round (its seed is seed + 1000 * (round - 1) + branch):
    round r's branch b answers answers[r - 1][b] (the last entry for wider rounds)."""
    def rule(messages, seed):
        row = answers[min(seed // 1000, len(answers) - 1)]
        return row[min(seed % 1000, len(row) - 1)]
    return rule


# Round 1 disagrees (1 in 4), round 2 agrees 3 in 4, round 3 agrees fully.
ROUNDS = [["1", "2", "3", "4"], ["52", "52", "52", "7"], ["52"]]


def test_agreement_is_the_share_giving_the_most_common_answer():
    assert agreement(["52", "52", "7", None]) == 0.5
    assert agreement([]) == 0.0


@pytest.mark.parametrize("threshold, last_round", [(0.75, 2), (0.8, 3), (1.0, 3)])
def test_pdr_stops_after_the_round_that_reached_the_threshold_and_not_before(threshold,
                                                                             last_round):
    config = RunConfig(method="pdr", width=4, depth=5, distill="topk", k=2,
                       stop_when_agree=threshold)
    with OpenAIServer(answer=by_round(ROUNDS)) as server:
        provider = OpenAIProvider(server.base_url, "sk-x", "fake-model", max_retries=0,
                                  memory=KnownCapabilities(server.base_url, "fake-model", n=True))
        trace = asyncio.run(run(QUESTION, config, provider, reference="52"))
        sent = sum(r["body"].get("n", 1) for r in server.chat_requests)
    assert trace.status == "completed" and trace.stop_reason == "converged"
    assert max(n.round for n in trace.nodes) == last_round
    assert sent == 4 * last_round == trace.budget.calls
    assert trace.final_answer == "52"
    saved = savings(trace)
    assert saved.rounds == 5 - last_round
    assert saved.calls == config.calls - trace.budget.calls
    assert saved.tokens == round(saved.calls * trace.budget.b_total / trace.budget.calls)
    assert "not made" in saved.caption()


def test_without_the_setting_every_round_runs():
    trace = run_fake(RunConfig(method="pdr", width=4, depth=4, distill="topk", k=2),
                     FakeProvider(answer=by_round(ROUNDS)))
    assert trace.stop_reason is None and max(n.round for n in trace.nodes) == 4
    assert savings(trace) is None


def test_sr_stops_when_a_refinement_keeps_the_previous_answer():
    provider = FakeProvider(answer=by_round([["10"], ["11"], ["11"], ["12"]]))
    trace = run_fake(RunConfig(method="sr", depth=6, stop_when_agree=1.0), provider)
    assert len(provider.calls) == 3 and trace.stop_reason == "converged"
    assert trace.final_answer == "11" and savings(trace).rounds == 3


def test_rsa_stops_after_the_step_whose_population_agrees():
    provider = FakeProvider(answer=by_round(ROUNDS))
    config = RunConfig(method="rsa", width=4, k=2, depth=4, stop_when_agree=0.75)
    trace = run_fake(config, provider)
    assert len(provider.calls) == 8 and trace.stop_reason == "converged"
    assert savings(trace).rounds == 3 and savings(trace).calls == 12


def test_rsa_final_aggregation_still_runs_after_an_early_stop():
    provider = FakeProvider(answer=by_round(ROUNDS))
    config = RunConfig(method="rsa", width=4, k=2, depth=4, stop_when_agree=0.75,
                       final_select="aggregate")
    trace = run_fake(config, provider)
    assert [n.id for n in trace.nodes][-1] == "r3-final-0"
    assert len(provider.calls) == 9 and trace.stop_reason == "converged"


def test_a_resumed_adaptive_run_stops_at_the_same_round():
    config = RunConfig(method="pdr", width=4, depth=5, distill="topk", k=2,
                       stop_when_agree=0.75)
    events = []
    done = run_fake(config, FakeProvider(answer=by_round(ROUNDS)), events.append)
    # the log cut after round 1's drafts, as a killed process would leave it
    cut = [e for e in events if getattr(e, "node_id", "r1-").startswith("r1-")
           and not isinstance(e, RunFinished)]
    partial = fold(cut)
    partial.status = "interrupted"
    again = FakeProvider(answer=by_round(ROUNDS))
    resumed = asyncio.run(resume(partial, cut, again))
    assert resumed.stop_reason == "converged" == done.stop_reason
    assert [n.id for n in resumed.nodes] == [n.id for n in done.nodes]
    assert len(again.calls) == 4  # round 1 kept; round 2 called, then it stopped


@pytest.mark.parametrize(
    "fields, message",
    [({"method": "pdr", "stop_when_agree": 1.5}, "above 0 and at most 1"),
     ({"method": "pdr", "stop_when_agree": 0}, "above 0 and at most 1"),
     ({"method": "vote", "stop_when_agree": 0.8}, "only pdr, sr, rsa")],
)
def test_bad_thresholds_are_refused_saying_what_to_fix(fields, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig(**fields)


def test_evaluate_runs_every_method_and_reports_what_early_stops_saved(store):
    problems = [Problem(f"p{i}", QUESTION, "52") for i in range(2)]
    spec = EvalSpec(dataset="mine", methods=METHODS, widths=(4,), depths=(4,),
                    max_tokens=(256,), distill="topk", k=2, stop_when_agree=0.75)
    evaluation = create_evaluation(store, spec, problems)
    rows = asyncio.run(run_evaluation(store, evaluation, FakeProvider(answer=by_round(ROUNDS))))
    assert {r.method for r in rows} == set(METHODS)
    assert {r.status for r in rows} == {"completed"}
    by = {(r.problem_id, r.method): r for r in rows}
    # pdr and rsa agreed after round 2 of 4 (2 rounds saved); sr (width 1) stops when a
    # refinement keeps its answer, which round 3 ("52" after "52") does
    assert by[("p0", "pdr")].rounds_saved == 2 and by[("p0", "rsa")].rounds_saved == 3
    assert by[("p0", "sr")].rounds_saved == 1
    assert all(by[("p0", m)].rounds_saved == 0 == by[("p0", m)].tokens_saved
               for m in ("single", "vote", "tournament", "select"))
    assert by[("p0", "pdr")].tokens_saved > 0
    summary = {s.method: s for s in summarize(rows)}
    assert summary["pdr"].tokens_saved == sum(by[(p.id, "pdr")].tokens_saved
                                              for p in problems)
    results = list(csv.DictReader(io.StringIO(results_csv(rows))))
    assert {r["tokens_saved"] for r in results if r["method"] == "pdr"} == {
        str(by[("p0", "pdr")].tokens_saved)}
