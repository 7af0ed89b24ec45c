"""Runs on code tasks end to end: programs from the real openai client over HTTP to the
test server, executed against their tests, graded, voted and fed back by behaviour."""

from __future__ import annotations

import asyncio
import json

import pytest
from openai_server import OpenAIServer

from pdr_core.code.problems import load_humaneval
from pdr_core.config import ConfigError, RunConfig
from pdr_core.providers.openai import OpenAIProvider
from pdr_core.render.graph import answer_colors
from pdr_core.run.methods import fork, resume, run
from pdr_core.store import Store
from pdr_core.tasks import code_task, trace_key
from pdr_core.trace_import import trace_from_json

ZERO = next(p for p in load_humaneval() if p.id == "HumanEval/0")
WRONG = "def has_close_elements(numbers, threshold):\n    return True\n"
SORTED = ("def has_close_elements(numbers, threshold):\n    s = sorted(numbers)\n"
          "    return any(b - a < threshold for a, b in zip(s, s[1:]))\n")
PAIRS = ("def has_close_elements(numbers, threshold):\n"
         "    for i, a in enumerate(numbers):\n"
         "        for j, b in enumerate(numbers):\n"
         "            if i != j and abs(a - b) < threshold:\n"
         "                return True\n"
         "    return False\n")


def fenced(program: str) -> str:
    return f"\n```python\n{program}```\n"


def user_text(messages) -> str:
    return next(m["content"] for m in messages if m["role"] == "user")


def by_seed(programs: dict[int, str]):
    return lambda messages, seed: fenced(programs[seed % 1000])


def fixes_after_feedback(messages, seed):
    """A failing program first; the fixed one once a prompt shows a failed test."""
    return fenced(SORTED if "failed `assert" in user_text(messages) else WRONG)


def run_code(config: RunConfig, answer, allowed: bool = True, store: Store | None = None):
    with OpenAIServer(answer=answer) as server:
        provider = OpenAIProvider(server.base_url, "sk-x", "fake-model", max_retries=0)
        sink = store.writer() if store is not None else None
        trace = asyncio.run(run(ZERO.question, config, provider, sink,
                                task=code_task(ZERO, allowed)))
        return trace, server.chat_requests


def test_pdr_with_feedback_shows_the_failing_test_in_round_two_and_the_fix_passes(tmp_path):
    store = Store(tmp_path / "runs.db")
    config = RunConfig(method="pdr", width=2, depth=2, distill="feedback", k=1,
                       workspace_tokens=1_000)
    trace, requests = run_code(config, fixes_after_feedback, store=store)
    assert trace.status == "completed", trace.error
    round_two = user_text(requests[-1]["body"]["messages"])
    assert ("failed `assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.05) == False`: "
            "AssertionError (the candidate gave True)") in round_two
    drafts = [n for n in trace.nodes if n.stage == "draft"]
    assert all(n.correct is False and n.tests["status"] == "failed" for n in drafts)
    failed = [t for t in drafts[0].tests["tests"] if not t["passed"]]
    assert failed and "the candidate gave True" in failed[0]["error"]
    final = trace.node("r2-final-0")
    assert final.correct is True and final.tests["status"] == "passed"
    assert final.answer.startswith(ZERO.question.strip()[:20])  # the prompt's imports kept
    assert trace.correct is True
    assert trace.task["entry_point"] == "has_close_elements" and trace.task["executed"]
    # The task and the test results survive the store and the JSON trace.
    stored = store.get_trace(trace.id)
    assert stored.task == trace.task and stored.node("r2-final-0").tests == final.tests
    assert stored.correct is True
    again = trace_from_json(trace.to_json())
    assert again.task == trace.task and again.node("r1-draft-0").tests == drafts[0].tests


def test_sr_with_feedback_shows_the_failing_test_in_the_refine_prompt():
    config = RunConfig(method="sr", depth=2, sr_feedback=True, workspace_tokens=1_000)
    trace, requests = run_code(config, fixes_after_feedback)
    assert trace.status == "completed", trace.error
    refine = user_text(requests[-1]["body"]["messages"])
    assert "What its tests said:\nTests: passes 4 of 7 tests." in refine
    assert ("failed `assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.05) == False`: "
            "AssertionError (the candidate gave True)") in refine
    # The report is an extractive workspace node (no call) between the two generations.
    report = trace.node("r1-distill-0")
    assert not report.call and report.parent_ids == ["r1-draft-0"]
    assert trace.node("r2-final-0").parent_ids == ["r1-distill-0", "r1-draft-0"]
    assert trace.correct is True and trace.budget.calls == 2
    assert trace.config["sr_feedback"] is True


def test_sr_feedback_is_bounded_by_kappa_and_refused_without_tests():
    config = RunConfig(method="sr", depth=2, sr_feedback=True, workspace_tokens=20)
    trace, requests = run_code(config, fixes_after_feedback)
    report = trace.node("r1-distill-0")
    assert report.workspace["tokens"] <= 20 and report.workspace["dropped"] > 0
    assert report.text in user_text(requests[-1]["body"]["messages"])
    with pytest.raises(ConfigError, match="needs a code task"):
        asyncio.run(run("What is 2 + 2?", config,
                        OpenAIProvider("http://127.0.0.1:9", "sk-x", "m")))
    with pytest.raises(ConfigError, match="notes or test results, not both"):
        RunConfig(method="sr", sr_summary=True, sr_feedback=True)


def test_two_differently_written_correct_programs_are_one_answer():
    trace, _ = run_code(RunConfig(method="vote", width=3), by_seed({0: SORTED, 1: WRONG,
                                                                   2: PAIRS}))
    nodes = {n.id: n for n in trace.nodes}
    key = trace_key(trace)
    assert nodes["r1-draft-0"].answer != nodes["r1-draft-2"].answer
    assert key(nodes["r1-draft-0"].answer) == key(nodes["r1-draft-2"].answer)
    assert key(nodes["r1-draft-1"].answer) != key(nodes["r1-draft-0"].answer)
    assert "with 2 of 3" in trace.final_selection
    assert trace.final_answer == nodes["r1-draft-0"].answer and trace.correct is True
    assert len(answer_colors(trace)) == 2


def test_with_execution_off_nothing_runs_and_correctness_is_unknown():
    trace, _ = run_code(RunConfig(method="vote", width=2), by_seed({0: SORTED, 1: SORTED}),
                        allowed=False)
    assert trace.status == "completed"
    for node in trace.nodes:
        assert node.tests["status"] == "disabled" and node.correct is None
        assert "code execution is off" in node.tests["error"]
    assert trace.correct is None and not trace.task["executed"]
    assert "with 2 of 2" in trace.final_selection  # the same text is the same answer


def test_feedback_on_a_math_question_is_refused_with_what_to_do():
    with pytest.raises(ConfigError, match="feedback passes on programs with their test"):
        asyncio.run(run("What is 2 + 2?", RunConfig(distill="feedback", k=1),
                        OpenAIProvider("http://127.0.0.1:9", "sk-x", "m")))


def test_a_resumed_and_a_forked_code_run_keep_their_task(tmp_path):
    store = Store(tmp_path / "runs.db")
    config = RunConfig(method="pdr", width=2, depth=2, distill="feedback", k=1)
    trace, _ = run_code(config, fixes_after_feedback, store=store)
    with OpenAIServer(answer=fixes_after_feedback) as server:
        provider = OpenAIProvider(server.base_url, "sk-x", "fake-model", max_retries=0)
        forked = asyncio.run(fork(trace, "r2-final-0", provider, execute=True))
        with pytest.raises(ValueError, match="already completed"):
            asyncio.run(resume(trace, store.events(trace.id), provider, execute=True))
    assert forked.task == trace.task and forked.correct is True
    assert forked.node("r1-draft-0").tests == trace.node("r1-draft-0").tests


def test_a_trace_from_before_code_tasks_still_loads():
    trace, _ = run_code(RunConfig(method="single"), by_seed({0: SORTED}))
    data = json.loads(trace.to_json())
    del data["task"]
    for node in data["nodes"]:
        del node["tests"]
    old = trace_from_json(json.dumps(data))
    assert old.task is None and old.nodes[0].tests is None
