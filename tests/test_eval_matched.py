"""Evaluate on matched B_seq: per problem and PDR/SR arm, a single pass whose max_tokens is
that arm's B_seq on the problem; shown as its own line in the accuracy figure."""

from __future__ import annotations

import asyncio
import csv

from openai_server import OpenAIServer
from test_cli import cli

from pdr_core.evals.estimate import estimate
from pdr_core.evals.figure import accuracy_figure
from pdr_core.evals.problems import Problem
from pdr_core.evals.records import create_evaluation
from pdr_core.evals.results import collect_results, summarize
from pdr_core.evals.run import run_evaluation
from pdr_core.evals.spec import EvalSpec, Setting
from pdr_core.providers.openai import OpenAIProvider

PROBLEMS = [Problem("add", "What is 17 + 25?", "42"), Problem("mul", "What is 6 * 7?", "42")]


def test_matched_arms_run_a_single_pass_at_each_arms_b_seq_and_plot_it(store):
    spec = EvalSpec(dataset="inline", methods=("single", "sr", "pdr"), widths=(2,),
                    depths=(2,), max_tokens=(256,), matched_bseq=True)
    matched = {s for s in spec.settings() if s.matched}
    assert matched == {Setting("single", 2, 2, 256, "pdr", "summary"),
                       Setting("single", 1, 2, 256, "sr")}
    assert {s.label for s in matched} == {"single @ B_seq of pdr summary w2 d2 t256",
                                         "single @ B_seq of sr d2 t256"}
    evaluation = create_evaluation(store, spec, PROBLEMS)
    with OpenAIServer() as server:
        provider = OpenAIProvider(server.base_url, "sk-x", "fake-model", max_retries=0)
        rows = asyncio.run(run_evaluation(store, evaluation, provider))
        budgets = [r["body"].get("max_completion_tokens") or r["body"].get("max_tokens")
                   for r in server.chat_requests]
        # resuming makes no call: every cell, matched ones included, is complete
        asyncio.run(run_evaluation(store, evaluation, provider))
        assert len(server.chat_requests) == len(budgets)
    assert len(rows) == 5 * 2 and {r.status for r in rows} == {"completed"}
    by = {(r.problem_id, r.label): r for r in rows}
    for problem in PROBLEMS:
        for arm in matched:
            source = by[(problem.id, arm.source.label)]
            single = by[(problem.id, arm.label)]
            config = store.get_trace(single.run_id).config
            assert config["method"] == "single" and single.matched == arm.matched
            # its output budget is the B_seq of the arm's run on this problem, as sent
            assert config["max_tokens"] == source.b_seq != 256
            assert source.b_seq in budgets
    figure = accuracy_figure(summarize(rows))
    lines = {t.name: t for t in figure.data}
    assert {"single", "sr", "pdr", "single @ pdr B_seq", "single @ sr B_seq"} == set(lines)
    summary = {s.label: s for s in summarize(rows)}
    assert list(lines["single @ pdr B_seq"].x) == [
        summary["single @ B_seq of pdr summary w2 d2 t256"].mean_b_seq]
    assert collect_results(store, evaluation) == rows
    estimates = {a.label: a for a in estimate(spec, PROBLEMS)}
    assert estimates["single @ B_seq of pdr summary w2 d2 t256"].calls == 2


def test_eval_matched_bseq_from_the_cli(tmp_path):
    db, out = tmp_path / "runs.sqlite", tmp_path / "out"
    with OpenAIServer() as server:
        result = cli("eval", "gen:arith:2", "--methods", "pdr", "--width", "2", "--depth", "2",
                     "--max-tokens", "256", "--matched-bseq", "--base-url", server.base_url,
                     "--model", "fake-model", "--out", str(out), db=db)
    assert result.returncode == 0, result.stderr
    with open(out / "results.csv", newline="", encoding="utf-8") as handle:
        results = list(csv.DictReader(handle))
    arms = {(r["method"], r["matched"]) for r in results}
    assert arms == {("pdr", ""), ("single", "pdr")}
    assert len(results) == 4 and {r["status"] for r in results} == {"completed"}


def test_eval_preset_runs_every_method_at_matched_budget_from_the_cli(tmp_path):
    db, out = tmp_path / "runs.sqlite", tmp_path / "out"
    with OpenAIServer() as server:
        result = cli("eval", "gen:arith:1", "--preset", "matched-methods", "--width", "2",
                     "--depth", "2", "--max-tokens", "128", "--base-url", server.base_url,
                     "--model", "fake-model", "--out", str(out), db=db)
    assert result.returncode == 0, result.stderr
    with open(out / "results.csv", newline="", encoding="utf-8") as handle:
        results = list(csv.DictReader(handle))
    assert {(r["method"], r["matched"]) for r in results} == {
        ("pdr", ""), ("sr", ""), ("vote", ""), ("rsa", ""), ("tournament", ""),
        ("single", "pdr"), ("single", "sr")}
    widths = {r["method"]: r["width"] for r in results if not r["matched"]}
    assert {widths[m] for m in ("pdr", "vote", "rsa", "tournament")} == {"2"}
