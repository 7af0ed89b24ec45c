"""Comparing, grading and voting over the answers models gave.

Grading (`is_correct`) compares normal forms first (pdr_core.answer_forms), then, for
short answers that parse as plain math, equality as sympy expressions
(pdr_core.math_equivalence). Extraction from model text is pdr_core.extraction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pdr_core.answer_forms import normalize_answer
from pdr_core.math_equivalence import math_equal


def answers_equal(a: str | None, b: str | None) -> bool:
    """Whether both answers are present and normalise to the same form."""
    na, nb = normalize_answer(a), normalize_answer(b)
    return na is not None and na == nb


def is_correct(answer: str | None, reference: str | None) -> bool | None:
    """Whether `answer` matches `reference`, exactly or mathematically; None when there is
    no reference to grade by."""
    if reference is None:
        return None
    if answer is None:
        return False
    return answers_equivalent(answer, reference)


def answer_match(a: str | None, b: str | None) -> str | None:
    """How two answers were found to agree: "exact" (same normal form), "math" (equal as
    expressions: `\\frac{\\sqrt{3}}{2}` and `\\sqrt{3}/2`), or None when they do not."""
    na, nb = normalize_answer(a), normalize_answer(b)
    if na is None or nb is None:
        return None
    if na == nb:
        return "exact"
    return "math" if math_equal(na, nb) else None


def answers_equivalent(a: str | None, b: str | None) -> bool:
    """Whether both answers are present and equal, exactly or mathematically."""
    return answer_match(a, b) is not None


# What makes two answers the same: their normal form for math; a code task passes its own
# (pdr_core.code.identity: the same behaviour on the tests).
AnswerKey = Callable[[str | None], str | None]


def answer_clusters(answers: Sequence[str | None], key: AnswerKey = normalize_answer
                    ) -> list[tuple[str, list[int]]]:
    """Indices grouped by `key` (the normalised answer by default), largest group first.

    Ties go to the group whose first member came earliest. Missing answers (those whose key
    is None: no answer, or one that normalises to nothing) belong to no group.
    """
    groups: dict[str, list[int]] = {}
    for index, answer in enumerate(answers):
        found = key(answer)
        if found is not None:
            groups.setdefault(found, []).append(index)
    return sorted(groups.items(), key=lambda item: (-len(item[1]), item[1][0]))


def majority_vote(answers: Sequence[str | None], key: AnswerKey = normalize_answer
                  ) -> tuple[str | None, int]:
    """The most common answer (by `key`), as its earliest voter wrote it, and how many
    gave it.

    Ties go to the answer given first; with no answers at all, `(None, 0)`.
    """
    clusters = answer_clusters(answers, key)
    if not clusters:
        return None, 0
    _, members = clusters[0]
    return answers[members[0]], len(members)
