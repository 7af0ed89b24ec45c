"""A verification's score, read from the model's text, and the ranking it gives.

A verify call (pdr_core.run.verify) asks the model to score one draft from 0 (certainly wrong)
to 10 (certainly correct) in \\boxed{}. The score is read by `parse_score`: the final answer
("\\boxed{8}", "\\boxed{8/10}", "Answer: 7.5"), else the last "score: N" mention; a score
that cannot be read, or is out of range, is None, and such a draft ranks after every scored
one (and its verify node is flagged).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from pdr_core.extraction import extract_answer
from pdr_core.run.operators import Draft
from pdr_core.trace import Node

MAX_SCORE = 10.0
# "8", "8.5", "8/10", "8 out of 10", "score: 8": the whole of a stated answer.
_STATED = re.compile(r"(?:score\s*[:=]?\s*)?(\d{1,3}(?:\.\d+)?)\s*(?:(?:/|out\s+of)\s*10)?\.?",
                     re.IGNORECASE)
# "Score: 8", "score of 8/10": the last such mention in the text.
_MENTION = re.compile(r"\bscore\s*(?:of|is|[:=])?\s*\**\s*(\d{1,3}(?:\.\d+)?)\b", re.IGNORECASE)


def parse_score(text: str) -> float | None:
    """The score (0 to 10) that `text` gives; None when it gives none in range."""
    stated = extract_answer(text)
    if stated is not None:
        match = _STATED.fullmatch(stated.strip())
        if match and float(match.group(1)) <= MAX_SCORE:
            return float(match.group(1))
    for found in reversed(list(_MENTION.finditer(text))):
        if float(found.group(1)) <= MAX_SCORE:
            return float(found.group(1))
    return None


def rank_by_score(ranked: Sequence[Draft], scores: Mapping[str, float | None]) -> list[Draft]:
    """`ranked` (already in consensus order) reordered by score, highest first; drafts with
    no score (unreadable, or its verify call failed) last; ties keep the consensus order."""
    def key(draft: Draft) -> tuple[bool, float]:
        score = scores.get(draft.node_id)
        return (score is None, -(score or 0.0))

    return sorted(ranked, key=key)  # sorted is stable: ties stay in consensus order


def score_text(score: float | None) -> str:
    """'8', '7.5' or 'unreadable'."""
    return "unreadable" if score is None else f"{score:g}"


def verify_flags(node: Node) -> list[str]:
    """What a person must know about a verify node: a score that could not be read."""
    if node.stage != "verify" or node.status != "ok":
        return []
    if parse_score(node.text) is None:
        return ["its score could not be read (expected 0 to 10 in \\boxed{}): the draft it "
                "verifies ranks last"]
    return []
