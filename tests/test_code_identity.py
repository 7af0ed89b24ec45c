"""Programs as answers: the same answer when they behave the same on the tests."""

from __future__ import annotations

import pytest

from pdr_core.answers import answer_clusters, majority_vote
from pdr_core.code.executor import Executor, Limits
from pdr_core.code.identity import CodeTask
from pdr_core.code.problems import load_humaneval
from pdr_core.run.operators import Draft, answer_tally, final_vote, rank_drafts

ZERO = next(p for p in load_humaneval() if p.id == "HumanEval/0")
HEAD = "from typing import List\n\n\n"
# Two differently written correct programs, and two wrong ones that fail differently.
LOOPS = ZERO.question + ZERO.reference_solution
SORTED = (HEAD + "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
          "    s = sorted(numbers)\n"
          "    return any(b - a < threshold for a, b in zip(s, s[1:]))\n")
ALWAYS = HEAD + "def has_close_elements(numbers, threshold):\n    return True\n"
NEVER = HEAD + "def has_close_elements(numbers, threshold):\n    return False\n"


@pytest.fixture(scope="module")
def task() -> CodeTask:
    return CodeTask(ZERO, Executor(allowed=True, limits=Limits(wall_seconds=5)))


def test_two_differently_written_correct_programs_are_one_answer(task):
    assert LOOPS != SORTED
    assert task.key(LOOPS) == task.key(SORTED)
    assert task.key(ALWAYS) != task.key(NEVER) != task.key(LOOPS)
    assert task.correct(LOOPS) and task.correct(SORTED)
    assert task.correct(ALWAYS) is False
    assert task.correct(None) is False


def test_voting_groups_programs_by_behaviour(task):
    programs = [ALWAYS, LOOPS, NEVER, SORTED, None]
    clusters = answer_clusters(programs, task.key)
    assert clusters[0][1] == [1, 3]
    assert sorted(members for _, members in clusters[1:]) == [[0], [2]]
    assert majority_vote(programs, task.key) == (LOOPS, 2)
    # By their text alone (the math key) the four programs are four answers.
    assert majority_vote(programs)[1] == 1


def test_operators_rank_and_vote_by_behaviour(task):
    drafts = [Draft(f"r1-draft-{i}", i, text, text) for i, text in
              enumerate([ALWAYS, LOOPS, NEVER, SORTED])]
    ranked = rank_drafts(drafts, task.key)
    assert {d.node_id for d in ranked[:2]} == {"r1-draft-1", "r1-draft-3"}
    answer, selection = final_vote(drafts, 1, task.key)
    assert answer == LOOPS and "with 2 of 4" in selection
    assert "(2 attempts)" in answer_tally(drafts, task.key)


def test_each_distinct_program_runs_once(task):
    task.key(LOOPS)
    runs = len(task._runs)
    task.key(LOOPS)
    task.correct(LOOPS)
    assert len(task._runs) == runs


def test_without_execution_only_identical_text_is_the_same_answer():
    task = CodeTask(ZERO, Executor(allowed=False))
    assert task.key(LOOPS) == task.key(LOOPS + "   \n\n")
    assert task.key(LOOPS) != task.key(SORTED)
    assert task.correct(LOOPS) is None
    assert task.correct(None) is None
