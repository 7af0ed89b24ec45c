"""Datasets: every generated answer re-derived independently, JSONL errors naming the line,
spec strings, and the Hugging Face mapping (with a stand-in `datasets` module)."""

from __future__ import annotations

import json
import re
import sys
import types
from fractions import Fraction

import pytest
from sympy import Rational, Symbol, solve
from sympy.parsing.sympy_parser import (
    implicit_multiplication_application,
    parse_expr,
    standard_transformations,
)

from pdr_core.answers import answers_equivalent
from pdr_core.evals.benchmarks import benchmark_path
from pdr_core.evals.datasets import load_dataset_spec
from pdr_core.evals.generator import DIFFICULTIES, generate, parse_gen_spec
from pdr_core.evals.huggingface import map_record
from pdr_core.evals.problems import DatasetError, Problem, fingerprint, read_jsonl

SEEDS = (0, 1, 7)


# --- every generated answer, computed again from the question text ------------------------

def arith_from_text(question: str) -> int:
    """Re-read the word problem sentence by sentence."""
    sentences = re.split(r"(?<=[.?])\s+", question)
    first = re.match(r"\w+ has (\d+) boxes of (\w+), with (\d+) \2 in each box\.$", sentences[0])
    assert first, sentences[0]
    value = int(first.group(1)) * int(first.group(3))
    for sentence in sentences[1:-1]:
        if m := re.search(r"buys (\d+) more", sentence):
            value += int(m.group(1))
        elif m := re.search(r"gives away (\d+)", sentence):
            value -= int(m.group(1))
            assert value > 0
        elif sentence.endswith(" doubles."):
            value *= 2
        elif sentence.endswith(" triples."):
            value *= 3
        elif m := re.search(r"grows to (\d+) times its size", sentence):
            value *= int(m.group(1))
        elif m := re.search(r"into (\d+) equal piles and keeps only one", sentence):
            assert value % int(m.group(1)) == 0, "piles must be equal"
            value //= int(m.group(1))
        else:
            raise AssertionError(f"unknown step: {sentence}")
    assert sentences[-1].startswith("How many")
    return value


def linear_from_text(question: str) -> Fraction:
    """Solve the printed equation with sympy."""
    m = re.match(r"Solve for x: (.+) = (.+)\. Give x as", question)
    assert m, question
    transforms = standard_transformations + (implicit_multiplication_application,)
    x = Symbol("x")
    lhs, rhs = (parse_expr(side, transformations=transforms, local_dict={"x": x})
                for side in m.groups())
    [root] = solve(lhs - rhs, x)
    assert isinstance(root, Rational)
    return Fraction(int(root.p), int(root.q))


def mod_from_text(question: str) -> int:
    m = re.match(r"What is the remainder when (.+) is divided by (\d+)\?$", question)
    assert m, question
    expression, modulus = m.group(1), int(m.group(2))
    if p := re.fullmatch(r"(\d+)\^(\d+)", expression):
        return int(p.group(1)) ** int(p.group(2)) % modulus  # the slow way, on purpose
    if p := re.fullmatch(r"(\d+) × (\d+) \+ (\d+)", expression):
        return (int(p.group(1)) * int(p.group(2)) + int(p.group(3))) % modulus
    return int(expression) % modulus


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("seed", SEEDS)
def test_arith_answers_match_the_question_text(difficulty, seed):
    for problem in generate("arith", 40, difficulty, seed):
        assert problem.answer == str(arith_from_text(problem.question))
        assert int(problem.answer) > 0
        steps = problem.extra["params"]["steps"]
        assert {"easy": (1, 1), "medium": (2, 3), "hard": (4, 5)}[difficulty][0] \
            <= len(steps) <= {"easy": 1, "medium": 3, "hard": 5}[difficulty]


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("seed", SEEDS)
def test_linear_answers_solve_the_printed_equation(difficulty, seed):
    for problem in generate("linear", 25, difficulty, seed):
        root = linear_from_text(problem.question)
        expected = str(root.numerator) if root.denominator == 1 else \
            f"{root.numerator}/{root.denominator}"
        assert problem.answer == expected
        if difficulty != "hard":
            assert root.denominator == 1


def test_hard_linear_problems_include_fractions():
    roots = [Fraction(p.answer) for p in generate("linear", 40, "hard")]
    assert any(r.denominator > 1 for r in roots)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("seed", SEEDS)
def test_mod_answers_match_the_question_text(difficulty, seed):
    for problem in generate("mod", 40, difficulty, seed):
        assert problem.answer == str(mod_from_text(problem.question))


def test_generator_is_seeded_and_prefix_stable():
    assert generate("arith", 10, "hard", 3) == generate("arith", 10, "hard", 3)
    assert generate("mod", 20)[:10] == generate("mod", 10)
    assert generate("linear", 10, seed=1) != generate("linear", 10, seed=2)
    ids = [p.id for p in generate("arith", 30)]
    assert len(set(ids)) == 30 and ids[0] == "arith-medium-s0-001"
    questions = [p.question for p in generate("arith", 30)]
    assert len(set(questions)) == 30
    easy, hard = generate("arith", 20, "easy"), generate("arith", 20, "hard")
    assert sum(len(p.question) for p in hard) > 2 * sum(len(p.question) for p in easy)


def test_generated_answers_are_graded_by_the_answer_checker():
    for problem in generate("linear", 20, "hard"):
        assert answers_equivalent(problem.answer, problem.answer)
        root = Fraction(problem.answer)
        assert answers_equivalent(f"\\frac{{{root.numerator}}}{{{root.denominator}}}",
                                  problem.answer)


# --- spec strings ------------------------------------------------------------------------

def test_gen_specs():
    assert parse_gen_spec("gen:arith:20") == ("arith", 20, "medium", 0)
    assert parse_gen_spec("gen:linear:10:hard") == ("linear", 10, "hard", 0)
    assert parse_gen_spec("gen:mod:15:easy:seed=3") == ("mod", 15, "easy", 3)
    assert parse_gen_spec("gen:mod:15:seed=3:easy") == ("mod", 15, "easy", 3)
    problems = load_dataset_spec("gen:mod:15:easy:seed=3")
    assert len(problems) == 15 and problems == generate("mod", 15, "easy", 3)
    assert len(load_dataset_spec("gen:arith:20")) == 20


@pytest.mark.parametrize(("spec", "message"), [
    ("gen:poetry:3", "unknown generator 'poetry'"),
    ("gen:arith:x", "count 'x' is not a whole number"),
    ("gen:arith:0", "from 1 to"),
    ("gen:arith:3:extreme", "'extreme' is neither a difficulty"),
    ("gen:arith:3:seed=abc", "not a whole-number seed"),
    ("gen:arith", "expected gen:KIND:N"),
    ("no/such/file.jsonl", "gen:KIND:N"),
    ("hf:", "expected hf:NAME"),
])
def test_bad_specs_say_what_is_wrong(spec, message):
    with pytest.raises(DatasetError, match=re.escape(message)):
        load_dataset_spec(spec)


# --- JSONL -------------------------------------------------------------------------------

def test_benchmark_files_load_with_extra_keys_kept():
    aime = load_dataset_spec(str(benchmark_path("aime2024")))
    assert len(aime) == 30 and aime[0].id == "aime2024-01" and aime[0].answer.isdigit()
    math500 = load_dataset_spec(str(benchmark_path("math500")))
    assert len(math500) == 500
    assert set(math500[0].extra) == {"subject", "level"}
    assert math500[0].to_dict()["subject"] == "Precalculus"
    assert Problem.from_dict(math500[0].to_dict()) == math500[0]
    assert fingerprint(math500) == fingerprint(load_dataset_spec("math500"))
    assert fingerprint(math500) != fingerprint(math500[:-1])


def rows(*lines: str) -> bytes:
    return "\n".join(lines).encode()


GOOD = json.dumps({"id": "a", "question": "What is 2 + 2?", "answer": "4"})


@pytest.mark.parametrize(("data", "message"), [
    (rows(GOOD, "", '{"id": "b", "question": "x?", "answer": 1'),
     "line 3: not valid JSON"),
    (rows(GOOD, '{"id": "b", "question": "x?"}'), "line 2: missing 'answer'"),
    (rows('{"question": "x?"}'), "line 1: missing 'id', 'answer'"),
    (rows(GOOD, "[1, 2]"), "line 2: expected a JSON object"),
    (rows(GOOD, GOOD), "line 2: id 'a' already used on line 1"),
    (rows('{"id": "a", "question": "  ", "answer": "4"}'), "line 1: 'question' is empty"),
    (rows('{"id": "a", "question": "q", "answer": true}'), "line 1: 'answer' must be"),
    (rows('{"id": "a", "question": "q", "answer": [4]}'), "line 1: 'answer' must be"),
    (b"", "no problems"),
    (b"\xff\xfe{", "not UTF-8"),
])
def test_malformed_jsonl_names_the_line(data, message):
    with pytest.raises(DatasetError, match=re.escape(message)) as info:
        read_jsonl(data, "mine.jsonl")
    assert str(info.value).startswith("mine.jsonl")


def test_jsonl_from_upload_bytes_and_path(tmp_path):
    data = "\ufeff" + GOOD + "\n\n" + json.dumps(
        {"id": 7, "question": "Q?", "answer": 12, "topic": "t"}) + "\n"
    problems = read_jsonl(data.encode(), "upload.jsonl")
    assert [(p.id, p.answer) for p in problems] == [("a", "4"), ("7", "12")]
    assert problems[1].extra == {"topic": "t"}
    path = tmp_path / "set.jsonl"
    path.write_text(data, encoding="utf-8")
    assert load_dataset_spec(str(path)) == problems


# --- Hugging Face ------------------------------------------------------------------------

def test_map_record_picks_question_and_answer_columns():
    math_row = {"problem": "Compute $1+1$.", "solution": "Add: $\\boxed{2}$.",
                "unique_id": "test/algebra/1.json", "level": 1}
    problem = map_record(math_row, 0, "MATH")
    assert (problem.id, problem.question, problem.answer) == \
        ("test/algebra/1.json", "Compute $1+1$.", "2")
    assert problem.extra == {"level": 1}

    gsm_row = {"question": "Ducks?", "answer": "16 - 3 - 4 = 9\n9 * 2 = 18\n#### 18"}
    problem = map_record(gsm_row, 4, "gsm8k")
    assert (problem.id, problem.answer) == ("gsm8k-0005", "18")

    math500_row = {"problem": "P", "solution": "long \\boxed{3}", "answer": "\\frac{1}{2}"}
    problem = map_record(math500_row, 0)
    assert problem.answer == "\\frac{1}{2}" and problem.extra == {"solution": "long \\boxed{3}"}

    with pytest.raises(DatasetError, match="no question column"):
        map_record({"text": "x", "answer": "1"}, 2, "set")
    with pytest.raises(DatasetError, match="row 3: no answer"):
        map_record({"question": "x", "solution": "no box here"}, 3, "set")


def test_hf_spec_loads_through_the_datasets_package(monkeypatch):
    calls = []

    def load_dataset(name, config, split):
        calls.append((name, config, split))
        return [{"question": f"Q{i}", "answer": f"text\n#### {i * 10}"} for i in range(3)]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    problems = load_dataset_spec("hf:openai/gsm8k:main:test")
    assert calls == [("openai/gsm8k", "main", "test")]
    assert [(p.id, p.answer) for p in problems] == [("gsm8k-0001", "0"), ("gsm8k-0002", "10"),
                                                     ("gsm8k-0003", "20")]
    load_dataset_spec("hf:HuggingFaceH4/MATH-500")
    load_dataset_spec("hf:HuggingFaceH4/MATH-500:train")
    assert calls[1:] == [("HuggingFaceH4/MATH-500", None, "test"),
                         ("HuggingFaceH4/MATH-500", None, "train")]


def test_hf_errors_are_dataset_errors(monkeypatch):
    def missing(name, config, split):
        raise FileNotFoundError(f"Dataset '{name}' doesn't exist on the Hub")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=missing))
    with pytest.raises(DatasetError, match="cannot load hf:nobody/nothing"):
        load_dataset_spec("hf:nobody/nothing")


def test_hf_without_the_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(DatasetError, match=re.escape("pip install datasets")):
        load_dataset_spec("hf:HuggingFaceH4/MATH-500")
