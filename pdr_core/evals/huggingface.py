"""Hugging Face datasets as problems (`hf:NAME[:SPLIT]` or `hf:NAME:CONFIG:SPLIT`), through
the optional `datasets` package: each row's question, answer and id columns found by name."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from pdr_core.evals.problems import DatasetError, Problem
from pdr_core.extraction import extract_answer

HF_INSTALL = "pip install datasets"

# Column names tried, in order, when mapping a Hugging Face row to a problem.
QUESTION_COLUMNS = ("problem", "question", "Problem", "Question", "prompt", "input")
ANSWER_COLUMNS = ("answer", "final_answer", "Answer", "target")
SOLUTION_COLUMNS = ("solution", "Solution", "output", "response")
ID_COLUMNS = ("id", "unique_id", "problem_id", "ID", "idx")


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
