"""Problems and their JSONL form: one question with its reference answer, read from JSONL
text (a file or an upload) with every malformed row named by its line."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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
