"""The feedback workspace: selected programs with their test results, within kappa."""

from __future__ import annotations

import asyncio

import pytest

from pdr_core.code.executor import Executor, Limits
from pdr_core.code.feedback import feedback_workspace, outcome, report
from pdr_core.code.identity import CodeTask
from pdr_core.code.problems import load_humaneval
from pdr_core.run.operators import Draft
from pdr_core.tokens import estimate_tokens

ZERO = next(p for p in load_humaneval() if p.id == "HumanEval/0")
GOOD = ZERO.question + ZERO.reference_solution
WRONG = ZERO.question + "    return True\n"
LOOP = ZERO.question + "    while True:\n        pass\n"


@pytest.fixture(scope="module")
def task() -> CodeTask:
    return CodeTask(ZERO, Executor(allowed=True, limits=Limits(wall_seconds=2)))


def draft(i: int, program: str | None) -> Draft:
    return Draft(f"r1-draft-{i}", i, f"model text {i}", program)


def test_the_workspace_holds_each_failed_test_and_its_message(task):
    text, info = asyncio.run(feedback_workspace([draft(0, WRONG), draft(1, GOOD)], task,
                                                4_000, None))
    assert "### Attempt 1 (answer: passes 4 of 7 tests)" in text
    assert "failed `assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.05) == False`: " \
           "AssertionError (the candidate gave True)" in text
    assert "### Attempt 2 (answer: passes 7 of 7 tests)" in text
    assert WRONG.rstrip() in text
    assert [row["node_id"] for row in info["drafts"]] == ["r1-draft-0", "r1-draft-1"]


def test_the_workspace_is_bounded_to_kappa_and_keeps_the_failures(task):
    padded = WRONG + "".join(f"# padding line {i}\n" for i in range(400))
    text, info = asyncio.run(feedback_workspace([draft(0, padded)], task, 200, None))
    assert estimate_tokens(text) <= 200
    assert info["dropped"] > 0 or info["drafts"][0]["cut"] > 0
    assert "AssertionError (the candidate gave True)" in text


def test_a_stopped_program_and_a_missing_one(task):
    execution = task.execution(LOOP)
    assert outcome(execution) == "timeout (wall clock 2s) before any test finished"
    assert "Stopped: stopped after 2s of wall clock" in report(execution)
    text, _ = asyncio.run(feedback_workspace([draft(0, None)], task, 500, None))
    assert "no program" in text


def test_with_execution_off_the_workspace_says_why(task):
    off = CodeTask(ZERO, Executor(allowed=False))
    text, _ = asyncio.run(feedback_workspace([draft(0, WRONG)], off, 2_000, None))
    assert "Tests not run: code execution is off" in text
