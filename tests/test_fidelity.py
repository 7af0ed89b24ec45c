"""PDR as published: SR refines one answer, B_seq on the call graph, the distiller's budget,
explicit selection. Through the real openai client and the loopback server where a request
matters, with the fake provider at the project's own seam elsewhere."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from conftest import run_fake
from openai_server import OpenAIServer
from streamlit.testing.v1 import AppTest

from pdr_core.budgets import compute_budget, longest_token_path
from pdr_core.config import FINAL_SELECTS, PRESETS, RunConfig
from pdr_core.prompts import PromptSet
from pdr_core.providers.openai import OpenAIProvider
from pdr_core.run.methods import fork, resume, run
from pdr_core.run.operators import rank_drafts
from pdr_core.run.workspace import workspace_flags, workspace_summary, workspace_text
from pdr_core.store import Store
from pdr_core.testing import FakeProvider, KnownCapabilities
from pdr_core.tokens import CHARS_PER_TOKEN, estimate_tokens
from pdr_core.trace import Node
from pdr_core.trace_import import trace_from_json

QUESTION = "What is 17 * 3 + 1?"


def run_on_server(config: RunConfig, server: OpenAIServer, reference: str | None = "52"):
    provider = OpenAIProvider(server.base_url, "sk-x", "fake-model", max_retries=0,
                                  memory=KnownCapabilities(server.base_url, "fake-model", n=True))
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


# --- B_seq is the token-weighted longest path through the call graph ---------------------


def node(id_, stage, round_, branch, parents, tokens, call=True, status="ok"):
    return Node(id_, stage, round_, branch, list(parents), [], "2025-01-01T00:00:00+00:00",
                usage={"prompt_tokens": tokens // 2, "completion_tokens": tokens - tokens // 2},
                status=status, call=call)


def test_b_seq_is_the_longest_path_on_an_irregular_graph():
    nodes = [
        node("a", "draft", 1, 0, [], 100),
        node("b", "draft", 1, 1, [], 40),
        node("c", "draft", 1, 2, [], 60),
        node("x", "distill", 1, 0, ["a"], 0, call=False),  # extractive: a free connector
        node("y", "distill", 1, 1, ["b", "c"], 30),
        node("d", "refine", 2, 0, ["x"], 50),
        node("e", "refine", 2, 1, ["y"], 80),
        node("g", "refine", 2, 2, ["y"], 500, status="running"),  # not settled: weighs 0
        node("f", "final", 3, 0, ["d", "e"], 20),
    ]
    # a-x-d-f = 170, b-y-e-f = 170, c-y-e-f = 60 + 30 + 80 + 20 = 190; the largest call of
    # each stage plus every distill call would say 100 + 30 + 80 + 20 = 230.
    assert longest_token_path(nodes) == (190, ["c", "y", "e", "f"])
    budget = compute_budget(nodes)
    assert (budget.b_seq, budget.b_total, budget.calls) == (190, 380, 7)


def heaviest_path_by_enumeration(trace) -> int:
    """Every root-to-node path's weight, enumerated; the largest."""
    by_id = {n.id: n for n in trace.nodes}

    def weight(n):
        return n.tokens if n.call and n.status != "running" else 0

    def heaviest_to(node_id):
        n = by_id[node_id]
        return weight(n) + max((heaviest_to(p) for p in n.parent_ids), default=0)

    return max((heaviest_to(n.id) for n in trace.nodes), default=0)


def test_b_seq_follows_the_graph_for_runs_forks_and_resumed_runs(store):
    answers = {0: "3", 1: "5", 2: "5", 3: "7"}
    provider = FakeProvider(answer=lambda messages, seed: answers.get(seed % 1000, "5") * (
        1 + seed % 5))
    config = RunConfig(method="pdr", depth=3, width_schedule=(4, 3, 1),
                       distill="per-sample-topk", k=2)
    base = run_fake(config, provider, sink=store.writer())
    forked = asyncio.run(fork(base, "r2-refine-1", provider, store.writer()))

    events = []
    failing = FakeProvider(fail=lambda messages, seed: "down" if seed >= 2000 else None)
    failed = run_fake(RunConfig(method="pdr", width=3, depth=3), failing, sink=events.append)
    assert failed.status == "failed"
    resumed = asyncio.run(resume(failed, events, FakeProvider()))

    for trace in (base, forked, resumed):
        assert trace.status == "completed"
        assert trace.budget.b_seq == heaviest_path_by_enumeration(trace) > 0
    saved = {r.id: r.b_seq for r in store.list_runs()}
    assert saved[base.id] == base.budget.b_seq and saved[forked.id] == forked.budget.b_seq


# --- the distiller gets its own budget; the workspace is what is bounded ------------------


def request_for(server_requests, node):
    """The chat request that made `node` (by the messages it was sent)."""
    matches = [r for r in server_requests if r["body"]["messages"] == node.messages]
    assert len(matches) == 1, node.id
    return matches[0]["body"]


def output_cap(body: dict) -> int:
    return body.get("max_completion_tokens") or body["max_tokens"]


def workspace_in(prompt: str) -> str:
    return prompt.split("Workspace:\n", 1)[1]


def test_the_summary_call_gets_the_distill_budget_and_the_next_round_at_most_kappa():
    for distill_max_tokens, expected in ((None, 300), (200, 200)):
        config = RunConfig(method="pdr", width=2, depth=2, max_tokens=300, workspace_tokens=16,
                           distill_max_tokens=distill_max_tokens)
        with OpenAIServer() as server:
            trace = run_on_server(config, server)
            requests = server.chat_requests
        summary = trace.node("r1-distill-0")
        assert output_cap(request_for(requests, summary)) == expected != 16
        # the summary kept all it wrote; what went on was cut to kappa (estimated tokens)
        assert estimate_tokens(summary.text) > 16
        final = request_for(requests, trace.node("r2-final-0"))
        passed = workspace_in(final["messages"][-1]["content"])
        assert estimate_tokens(passed) <= 16
        info = summary.workspace
        assert info["kappa"] == 16 and info["counted"] == "estimate"
        assert info["tokens"] == estimate_tokens(passed)
        assert info["dropped"] == estimate_tokens(summary.text) - info["tokens"] > 0
        assert f"cut at kappa: {info['dropped']} tokens dropped (estimated)" in \
            workspace_flags(summary)


def test_the_models_own_tokenizer_bounds_the_workspace_where_the_provider_has_one():
    def three_chars_a_token(text):  # LaTeX-like density: more tokens than the estimate
        return -(-len(text) // 3)

    provider = FakeProvider(tokenizer=three_chars_a_token)
    trace = run_fake(RunConfig(method="pdr", width=2, depth=2, workspace_tokens=20), provider)
    summary = trace.node("r1-distill-0")
    assert summary.workspace["counted"] == "exact"
    passed = workspace_in(trace.node("r2-final-0").messages[-1]["content"])
    assert three_chars_a_token(passed) <= 20 < estimate_tokens(summary.text)
    assert summary.workspace["tokens"] == three_chars_a_token(passed)
    assert summary.workspace["dropped"] == three_chars_a_token(summary.text) - \
        three_chars_a_token(passed)


def test_an_empty_summary_from_a_reasoning_reply_is_flagged():
    with OpenAIServer() as server:
        server.inject("reasoning")  # the drafts (one shared request)
        server.inject("reasoning_only")  # the summary: all budget spent thinking
        trace = run_on_server(RunConfig(method="pdr", width=2, depth=2), server)
    summary = trace.node("r1-distill-0")
    assert summary.text == "" and summary.reasoning and summary.finish_reason == "length"
    flags = workspace_flags(summary)
    assert any(f.startswith("the summary is empty: the model spent its budget on reasoning")
               for f in flags)
    assert any("stopped at its max-tokens limit" in f for f in flags)
    assert "the summary is empty" in workspace_summary(summary)


def test_the_workspace_record_survives_export_and_import():
    trace = run_fake(RunConfig(method="pdr", width=2, depth=2, workspace_tokens=16))
    again = trace_from_json(trace.to_json())
    assert again.node("r1-distill-0").workspace == trace.node("r1-distill-0").workspace
    assert workspace_text(again.node("r1-distill-0")) in \
        again.node("r2-final-0").messages[-1]["content"]


# --- selection is a named, visible operator ---------------------------------------------


def test_the_default_summary_asks_for_the_papers_contents_and_leaves_the_tally_out():
    with OpenAIServer() as server:
        trace = run_on_server(RunConfig(method="pdr", width=4, depth=2), server)
        [summary_request] = [r for r in server.chat_requests
                             if r["body"]["messages"] == trace.node("r1-distill-0").messages]
    prompt = user_prompt(summary_request)
    for asked in ("agree", "contradict", "derived", "unresolved", "next actions"):
        assert asked in prompt
    assert "attempts)" not in prompt and "(answer:" not in prompt
    # a person can add the tally back with its template variable
    prompts = PromptSet(summary=PromptSet().summary + "\n\nAnswers: {answer_tally}")
    trace = run_fake(RunConfig(method="pdr", width=4, depth=2, prompts=prompts))
    assert "52 (3 attempts), 53 (1 attempt)" in trace.node("r1-distill-0").messages[-1]["content"]


def test_an_extractive_workspace_records_what_it_kept_and_cut_per_draft():
    config = RunConfig(method="pdr", width=4, depth=2, distill="topk", k=2, workspace_tokens=40)
    trace = run_fake(config)
    workspace = trace.node("r1-distill-0")
    rows = workspace.workspace["drafts"]
    assert [r["node_id"] for r in rows] == workspace.parent_ids
    for row in rows:
        draft = trace.node(row["node_id"])
        assert row["kept"] + row["cut"] == estimate_tokens(draft.text)
        assert row["cut"] > 0 and row["kept"] > 0
    assert estimate_tokens(workspace.text) <= 40 and workspace.workspace["tokens"] <= 40
    summary = workspace_summary(workspace)
    for row in rows:
        assert f"{row['node_id']} kept {row['kept']}, cut {row['cut']}" in summary
    # room for them whole: nothing cut
    roomy = run_fake(RunConfig(method="pdr", width=4, depth=2, distill="topk", k=2))
    assert all(r["cut"] == 0 for r in roomy.node("r1-distill-0").workspace["drafts"])


# --- presets and the final selection ----------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def test_cli_preset_paper_runs_the_8_4_1_schedule(tmp_path):
    db = tmp_path / "runs.sqlite"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PDR_"))}
    with OpenAIServer() as server:
        result = subprocess.run(
            [sys.executable, "-m", "pdr_core", "run", QUESTION, "--preset", "paper",
             "--distill", "topk", "--base-url", server.base_url, "--model", "fake-model",
             "--db", str(db)],
            capture_output=True, text=True, env={**env, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
            timeout=120)
    assert result.returncode == 0, result.stderr
    fields = dict(line.split(": ", 1) for line in result.stdout.strip().splitlines())
    trace = Store(db).get_trace(fields["run"])
    assert trace.config["width_schedule"] == [8, 4, 1] and trace.config["method"] == "pdr"
    assert fields["calls"] == "13" and "selection" not in fields  # width 1: nothing to select


def test_a_last_round_wider_than_1_records_its_final_selection():
    answers = {0: "7", 1: "9", 2: "9"}
    provider = FakeProvider(answer=lambda messages, seed: answers.get(seed % 1000, "7"))
    config = RunConfig(method="pdr", depth=2, width_schedule=(2, 3), distill="topk", k=1)
    trace = run_fake(config, provider, reference="9")
    assert trace.final_answer == "9"
    assert trace.final_selection == (
        "majority vote over the 3 drafts of round 2 (r2-final-0, r2-final-1, r2-final-2): "
        "9 with 2 of 3")
    assert trace_from_json(trace.to_json()).final_selection == trace.final_selection
    assert trace.config["final_select"] == "vote"
    # a last round of width 1 has nothing to select
    assert run_fake(RunConfig(method="pdr", width=2, depth=2)).final_selection is None


def test_run_page_paper_preset(db):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    at.session_state["provider"] = FakeProvider()
    at.run()
    at.radio(key="preset").set_value("paper").run()
    assert at.slider(key="width").disabled and at.slider(key="depth").disabled
    assert any("Schedule 8, 4, 1" in c.value for c in at.caption)
    calls = [m for m in at.metric if m.label == "Calls"]
    assert calls[0].value == str(RunConfig(method="pdr", depth=3,
                                           width_schedule=(8, 4, 1)).calls)


def test_the_readme_fidelity_table_matches_the_code():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Fidelity", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][2:]
    assert len(rows) >= 10
    schedule = ", ".join(map(str, PRESETS["paper"]["width_schedule"]))
    assert f"Example schedule {schedule}" in section and "`--preset paper`" in section
    assert f"{CHARS_PER_TOKEN} characters a token" in section
    assert all(f"`{name}`" in section for name in FINAL_SELECTS)
    assert "`consensus`" in section and "consensus" in rank_drafts.__doc__
    assert "`--distill-max-tokens`" in section and "`--sr-summary`" in section
    assert "longest path" in section and "longest_token_path" in readme


# --- the matched-budget baseline ----------------------------------------------------------


def cli(*args, db):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PDR_"))}
    return subprocess.run([sys.executable, "-m", "pdr_core", *args, "--db", str(db)],
                          capture_output=True, text=True, env={**env, "PYTHONPATH": str(ROOT)},
                          cwd=ROOT, timeout=120)


def test_baseline_runs_a_single_pass_whose_max_tokens_is_the_runs_b_seq(tmp_path):
    db = tmp_path / "runs.sqlite"
    with OpenAIServer() as server:
        source = cli("run", QUESTION, "--answer", "52", "--width", "3", "--depth", "3",
                     "--base-url", server.base_url, "--model", "fake-model", db=db)
        assert source.returncode == 0, source.stderr
        fields = dict(line.split(": ", 1) for line in source.stdout.strip().splitlines())
        server.clear()
        result = cli("baseline", fields["run"], db=db)
        assert result.returncode == 0, result.stderr
        [request] = server.chat_requests
        capped = cli("baseline", fields["run"], "--context-tokens", "300", db=db)
        assert capped.returncode == 0, capped.stderr
    b_seq = int(fields["b_seq"])
    assert output_cap(request["body"]) == b_seq
    new = dict(line.split(": ", 1) for line in result.stdout.strip().splitlines())
    trace = Store(db).get_trace(new["run"])
    assert trace.config["method"] == "single" and trace.config["max_tokens"] == b_seq
    assert trace.reference_answer == "52" and trace.question == QUESTION
    assert "capped at" in capped.stderr and f"B_seq of {b_seq:,}" in capped.stderr
    assert [r.name for r in Store(db).list_runs()].count(f"baseline of {fields['run']}") == 2
