"""Problem sets for evaluations: built-in benchmarks, JSONL files, a generator, Hugging Face.

One entry point, `load_dataset_spec`, takes what a person types:

- a built-in benchmark's name: aime2024, aime2025, math500 or gsm8k (shipped with the
  package, see pdr_core.evals.benchmarks; no network);
- a path to a JSONL file with `id`, `question` and `answer` on every line (extra keys kept);
- `gen:KIND:N[:DIFFICULTY][:seed=S]`: N generated problems whose answers are computed,
  KIND one of arith (multi-step word problems), linear (linear equations), mod (modular
  arithmetic), DIFFICULTY easy, medium (default) or hard, S the seed (default 0);
- `hf:NAME[:SPLIT]` or `hf:NAME:CONFIG:SPLIT`: a Hugging Face dataset, through the optional
  `datasets` package.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from pdr_core.evals.benchmarks import NAMES as BENCHMARK_NAMES
from pdr_core.evals.benchmarks import benchmark_path
from pdr_core.extraction import extract_answer

KINDS = ("arith", "linear", "mod")
DIFFICULTIES = ("easy", "medium", "hard")
MAX_GENERATED = 10_000
HF_INSTALL = "pip install datasets"

# Column names tried, in order, when mapping a Hugging Face row to a problem.
QUESTION_COLUMNS = ("problem", "question", "Problem", "Question", "prompt", "input")
ANSWER_COLUMNS = ("answer", "final_answer", "Answer", "target")
SOLUTION_COLUMNS = ("solution", "Solution", "output", "response")
ID_COLUMNS = ("id", "unique_id", "problem_id", "ID", "idx")


class DatasetError(ValueError):
    """A dataset that cannot be loaded; the message says where and why."""


@dataclass
class Problem:
    """One question with its reference answer; `extra` holds any other fields."""

    id: str
    question: str
    answer: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.extra, "id": self.id, "question": self.question, "answer": self.answer}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Problem:
        extra = {k: v for k, v in data.items() if k not in ("id", "question", "answer")}
        return cls(str(data["id"]), str(data["question"]), str(data["answer"]), extra)


# What grades a code problem besides its question (see pdr_core.code.problems.as_eval_problem).
GRADING_FIELDS = ("entry_point", "tests")


def _graded_by(problem: Problem) -> list[Any]:
    """What grades `problem`: its answer, and a code problem's entry point and tests too.
    A question's row stays [id, question, answer], so older fingerprints still match."""
    row: list[Any] = [problem.id, problem.question, problem.answer]
    if any(name in problem.extra for name in GRADING_FIELDS):
        row += [problem.extra.get(name) for name in GRADING_FIELDS]
    return row


def fingerprint(problems: Iterable[Problem]) -> str:
    """A content hash of what poses and grades each problem (ids, questions, answers, a code
    problem's entry point and tests): names a problem set in a record, so changed tests
    are another dataset."""
    payload = json.dumps([_graded_by(p) for p in problems], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


# --- JSONL ----------------------------------------------------------------------------------


def _field_text(value: Any, key: str, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise DatasetError(f"{where}: '{key}' must be a string or a number, "
                           f"not {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise DatasetError(f"{where}: '{key}' is empty")
    return text


def jsonl_rows(data: str, source: str) -> Iterator[tuple[int, str, Any]]:
    """(line number, "SOURCE line N", parsed value) for each non-blank line of JSONL text;
    a line that is not JSON raises DatasetError naming it."""
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{source} line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") \
                from None
        yield number, where, row


def read_jsonl(data: bytes | str, source: str = "upload") -> list[Problem]:
    """Problems from JSONL text; a malformed row raises DatasetError naming its line."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DatasetError(f"{source}: not UTF-8 text ({exc.reason} at byte "
                               f"{exc.start})") from None
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for number, where, row in jsonl_rows(data, source):
        if not isinstance(row, dict):
            raise DatasetError(f"{where}: expected a JSON object with id, question and answer, "
                               f"found a {type(row).__name__}")
        missing = [key for key in ("id", "question", "answer") if key not in row]
        if missing:
            raise DatasetError(f"{where}: missing {', '.join(repr(k) for k in missing)} "
                               "(every row needs id, question and answer)")
        problem = Problem(
            id=_field_text(row["id"], "id", where),
            question=_field_text(row["question"], "question", where),
            answer=_field_text(row["answer"], "answer", where),
            extra={k: v for k, v in row.items() if k not in ("id", "question", "answer")},
        )
        if problem.id in seen:
            raise DatasetError(f"{where}: id {problem.id!r} already used on line "
                               f"{seen[problem.id]}")
        seen[problem.id] = number
        problems.append(problem)
    if not problems:
        raise DatasetError(f"{source}: no problems (the file is empty)")
    return problems


def load_jsonl(path: str | Path) -> list[Problem]:
    path = Path(path).expanduser()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror}") from None
    return read_jsonl(data, str(path))


def load_benchmark(name: str, limit: int | None = None) -> list[Problem]:
    """A built-in benchmark (see pdr_core.evals.benchmarks), or only its first `limit` problems
    (read without parsing the rest: the Run page's examples)."""
    try:
        path = benchmark_path(name)
    except KeyError as exc:
        raise DatasetError(exc.args[0]) from None
    if limit is None:
        return load_jsonl(path)
    with path.open(encoding="utf-8") as lines:
        head = [line for line, _ in zip(lines, range(limit), strict=False)]
    return read_jsonl("".join(head), str(path))


# --- the generator --------------------------------------------------------------------------

_NAMES = ("Maya", "Leo", "Priya", "Tomas", "Aisha", "Kenji", "Sofia", "Omar", "Ines", "Noah")
_ITEMS = ("marbles", "stickers", "apples", "coins", "cards", "pencils", "shells", "stamps")
# Per difficulty: (steps after the start, largest start factor, largest amount added or
# removed, largest running total a multiplication may reach).
_ARITH_LEVELS = {
    "easy": ((1, 1), 9, 20, 200),
    "medium": ((2, 3), 15, 60, 1_000),
    "hard": ((4, 5), 30, 250, 20_000),
}
_MULTIPLIER_WORDS = {2: "doubles", 3: "triples"}


def _arith(rng: random.Random, difficulty: str) -> tuple[str, str, dict[str, Any]]:
    (low, high), factor_max, amount_max, total_max = _ARITH_LEVELS[difficulty]
    name, item = rng.choice(_NAMES), rng.choice(_ITEMS)
    boxes, per_box = rng.randint(2, factor_max), rng.randint(2, factor_max)
    value = boxes * per_box
    sentences = [f"{name} has {boxes} boxes of {item}, with {per_box} {item} in each box."]
    steps: list[list[Any]] = []
    for _ in range(rng.randint(low, high)):
        divisors = [d for d in range(2, 7) if value % d == 0 and value // d >= 2]
        options = ["add"] + (["sub"] if value > 1 else [])
        options += ["mul"] if value * 2 <= total_max else []
        options += ["div"] if divisors else []
        op = rng.choice(options)
        if op == "add":
            amount = rng.randint(1, amount_max)
            value += amount
            sentences.append(f"Then {name} buys {amount} more {item}.")
        elif op == "sub":
            amount = rng.randint(1, min(value - 1, amount_max))
            value -= amount
            sentences.append(f"Then {name} gives away {amount} {item}.")
        elif op == "mul":
            amount = rng.choice([k for k in (2, 3, 4) if value * k <= total_max])
            value *= amount
            if amount in _MULTIPLIER_WORDS:
                sentences.append(f"Then the number of {item} {name} has "
                                 f"{_MULTIPLIER_WORDS[amount]}.")
            else:
                sentences.append(f"Then {name}'s collection grows to {amount} times its size.")
        else:
            amount = rng.choice(divisors)
            value //= amount
            sentences.append(f"Then {name} splits the {item} into {amount} equal piles "
                             "and keeps only one pile.")
        steps.append([op, amount])
    sentences.append(f"How many {item} does {name} have now?")
    params = {"boxes": boxes, "per_box": per_box, "steps": steps}
    return " ".join(sentences), str(_apply_steps(boxes * per_box, steps)), params


def _apply_steps(value: int, steps: list[list[Any]]) -> int:
    for op, amount in steps:
        if op == "add":
            value += amount
        elif op == "sub":
            value -= amount
        elif op == "mul":
            value *= amount
        else:
            value //= amount
    return value


def _linear_side(terms: list[tuple[int, str]]) -> str:
    """`[(3, "x"), (-5, "")]` -> `3x - 5`."""
    text = ""
    for coefficient, var in terms:
        if coefficient == 0:
            continue
        magnitude = abs(coefficient)
        body = (var if magnitude == 1 and var else f"{magnitude}{var}")
        if not text:
            text = ("-" if coefficient < 0 else "") + body
        else:
            text += (" - " if coefficient < 0 else " + ") + body
    return text or "0"


def _nonzero(rng: random.Random, low: int, high: int) -> int:
    return rng.choice([v for v in range(low, high + 1) if v != 0])


def _format_fraction(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else \
        f"{value.numerator}/{value.denominator}"


def _linear(rng: random.Random, difficulty: str) -> tuple[str, str, dict[str, Any]]:
    if difficulty == "easy":
        # a x + b = c, integer root
        x, a, b = rng.randint(-10, 10), rng.randint(2, 9), _nonzero(rng, -20, 20)
        equation = f"{_linear_side([(a, 'x'), (b, '')])} = {a * x + b}"
        params = {"a": a, "b": b, "rhs": a * x + b}
        root = Fraction(x)
    elif difficulty == "medium":
        # a x + b = c x + d, integer root
        x, a = rng.randint(-15, 15), _nonzero(rng, -9, 12)
        c = rng.choice([v for v in range(-9, 13) if v not in (0, a)])
        b = _nonzero(rng, -30, 30)
        d = (a - c) * x + b
        equation = f"{_linear_side([(a, 'x'), (b, '')])} = {_linear_side([(c, 'x'), (d, '')])}"
        params = {"a": a, "b": b, "c": c, "d": d}
        root = Fraction(x)
    else:
        # a(x + b) - c = d x + e, root usually a fraction
        a = rng.randint(2, 9)
        d = rng.choice([v for v in range(-9, 10) if v not in (0, a)])
        b, c, e = _nonzero(rng, -12, 12), rng.randint(1, 30), _nonzero(rng, -40, 40)
        inner = _linear_side([(1, "x"), (b, "")])
        equation = f"{a}({inner}) - {c} = {_linear_side([(d, 'x'), (e, '')])}"
        params = {"a": a, "b": b, "c": c, "d": d, "e": e}
        root = Fraction(e + c - a * b, a - d)
    return f"Solve for x: {equation}. Give x as an integer or a reduced fraction.", \
        _format_fraction(root), params


def _mod(rng: random.Random, difficulty: str) -> tuple[str, str, dict[str, Any]]:
    if difficulty == "easy":
        a, m = rng.randint(100, 9_999), rng.randint(3, 30)
        expression, value = str(a), a
        params = {"a": a, "m": m}
    elif difficulty == "medium":
        a, b, c = rng.randint(100, 999), rng.randint(10, 999), rng.randint(1, 999)
        m = rng.randint(7, 60)
        expression, value = f"{a} × {b} + {c}", a * b + c
        params = {"a": a, "b": b, "c": c, "m": m}
    else:
        a, e, m = rng.randint(2, 50), rng.randint(50, 2_000), rng.randint(7, 97)
        expression, value = f"{a}^{e}", pow(a, e, m)
        params = {"a": a, "e": e, "m": m}
    return f"What is the remainder when {expression} is divided by {m}?", \
        str(value % m), params


_GENERATORS: dict[str, Callable[[random.Random, str], tuple[str, str, dict[str, Any]]]] = {
    "arith": _arith,
    "linear": _linear,
    "mod": _mod,
}


def generate(kind: str, n: int, difficulty: str = "medium", seed: int = 0) -> list[Problem]:
    """`n` generated problems of `kind`; the same arguments give the same problems, and a
    larger `n` extends a smaller one (each problem has its own random stream)."""
    if kind not in _GENERATORS:
        raise DatasetError(f"unknown generator {kind!r}: use one of {', '.join(KINDS)}")
    if difficulty not in DIFFICULTIES:
        raise DatasetError(f"unknown difficulty {difficulty!r}: use one of "
                           f"{', '.join(DIFFICULTIES)}")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_GENERATED:
        raise DatasetError(f"problem count {n!r}: a whole number from 1 to {MAX_GENERATED}")
    problems = []
    for index in range(n):
        rng = random.Random(f"pdr-gen:{kind}:{difficulty}:{seed}:{index}")
        question, answer, params = _GENERATORS[kind](rng, difficulty)
        problems.append(Problem(
            id=f"{kind}-{difficulty}-s{seed}-{index + 1:03d}",
            question=question,
            answer=answer,
            extra={"kind": kind, "difficulty": difficulty, "seed": seed, "params": params},
        ))
    return problems


def parse_gen_spec(spec: str) -> tuple[str, int, str, int]:
    """`gen:KIND:N[:DIFFICULTY][:seed=S]` -> (kind, n, difficulty, seed)."""
    usage = "expected gen:KIND:N[:DIFFICULTY][:seed=S], e.g. gen:linear:10:hard:seed=3"
    parts = spec.split(":")
    if len(parts) < 3 or parts[0] != "gen":
        raise DatasetError(f"{spec!r}: {usage}")
    kind, count = parts[1], parts[2]
    try:
        n = int(count)
    except ValueError:
        raise DatasetError(f"{spec!r}: the count {count!r} is not a whole number; "
                           f"{usage}") from None
    difficulty, seed = "medium", 0
    for part in parts[3:]:
        if part.startswith("seed="):
            try:
                seed = int(part[len("seed="):])
            except ValueError:
                raise DatasetError(f"{spec!r}: {part!r} is not a whole-number seed") from None
        elif part in DIFFICULTIES:
            difficulty = part
        else:
            raise DatasetError(f"{spec!r}: {part!r} is neither a difficulty "
                               f"({', '.join(DIFFICULTIES)}) nor seed=S")
    return kind, n, difficulty, seed


# --- Hugging Face ---------------------------------------------------------------------------


def _first(record: Mapping[str, Any], columns: tuple[str, ...]) -> tuple[str, Any] | None:
    for column in columns:
        value = record.get(column)
        if value is not None and str(value).strip():
            return column, value
    return None


def _final_answer(text: str) -> str | None:
    """The final answer inside a worked solution: after GSM8K's `####`, else a box."""
    if "####" in text:
        return text.rsplit("####", 1)[1].strip() or None
    if "\\boxed" in text or "\\fbox" in text:
        return extract_answer(text)
    return None


def map_record(record: Mapping[str, Any], index: int, prefix: str = "hf") -> Problem:
    """A dataset row as a Problem: the question from `problem`/`question`/..., the answer
    from `answer` (GSM8K's `#### N` tail taken) or the boxed answer of `solution`."""
    where = f"{prefix} row {index}"
    question = _first(record, QUESTION_COLUMNS)
    if question is None:
        raise DatasetError(f"{where}: no question column; looked for "
                           f"{', '.join(QUESTION_COLUMNS)} in {', '.join(map(str, record))}")
    answer_text: str | None = None
    used = {question[0]}
    found = _first(record, ANSWER_COLUMNS)
    if found is not None:
        used.add(found[0])
        raw = str(found[1]).strip()
        answer_text = _final_answer(raw) or raw
    else:
        found = _first(record, SOLUTION_COLUMNS)
        if found is not None:
            used.add(found[0])
            answer_text = _final_answer(str(found[1]))
    if not answer_text:
        raise DatasetError(f"{where}: no answer; looked for a column "
                           f"{', '.join(ANSWER_COLUMNS)}, or a boxed answer in "
                           f"{', '.join(SOLUTION_COLUMNS)}")
    ident = _first(record, ID_COLUMNS)
    if ident is not None:
        used.add(ident[0])
    problem_id = str(ident[1]) if ident is not None else f"{prefix}-{index + 1:04d}"
    extra = {k: v for k, v in record.items() if k not in used}
    return Problem(problem_id, str(question[1]).strip(), answer_text, extra)


def load_hf(name: str, split: str = "test", config: str | None = None) -> list[Problem]:
    """A Hugging Face dataset split as problems (needs the `datasets` package and, the
    first time, a network)."""
    try:
        hf = importlib.import_module("datasets")
    except ImportError:
        raise DatasetError(f"hf:{name} needs the Hugging Face datasets package: "
                           f"{HF_INSTALL}") from None
    try:
        rows = hf.load_dataset(name, config, split=split)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot load hf:{name} (split {split}): {exc}") from None
    prefix = name.rsplit("/", 1)[-1]
    problems = [map_record(row, index, prefix) for index, row in enumerate(rows)]
    if not problems:
        raise DatasetError(f"hf:{name} split {split} has no rows")
    ids = [p.id for p in problems]
    if len(set(ids)) != len(ids):
        # Some sets reuse ids across subsets; positions are unique.
        for index, problem in enumerate(problems):
            problem.extra.setdefault("source_id", problem.id)
            problem.id = f"{prefix}-{index + 1:04d}"
    return problems


def parse_hf_spec(spec: str) -> tuple[str, str | None, str]:
    """`hf:NAME[:SPLIT]` or `hf:NAME:CONFIG:SPLIT` -> (name, config, split)."""
    parts = spec.split(":")[1:]
    if not parts or not parts[0] or len(parts) > 3:
        raise DatasetError(f"{spec!r}: expected hf:NAME[:SPLIT] or hf:NAME:CONFIG:SPLIT, "
                           "e.g. hf:HuggingFaceH4/MATH-500:test")
    if len(parts) == 1:
        return parts[0], None, "test"
    if len(parts) == 2:
        return parts[0], None, parts[1]
    return parts[0], parts[1], parts[2]


# --- one entry point ------------------------------------------------------------------------


def load_dataset_spec(spec: str) -> list[Problem]:
    """The problems a spec names: a built-in benchmark's name, a JSONL path, `gen:...` or
    `hf:...` (see the module doc)."""
    spec = spec.strip()
    if spec in BENCHMARK_NAMES:
        return load_benchmark(spec)
    if spec.startswith("gen:"):
        kind, n, difficulty, seed = parse_gen_spec(spec)
        return generate(kind, n, difficulty, seed)
    if spec.startswith("hf:"):
        name, config, split = parse_hf_spec(spec)
        return load_hf(name, split, config)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise DatasetError(f"{spec!r} is not a file; a dataset is a built-in benchmark "
                           f"({', '.join(BENCHMARK_NAMES)}), a JSONL path, "
                           "gen:KIND:N[:DIFFICULTY][:seed=S] (KIND arith, linear or mod) or "
                           "hf:NAME[:SPLIT]")
    return load_jsonl(path)
