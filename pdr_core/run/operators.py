"""Distill operators: which drafts feed each next-round workspace, and how it is written.

Selection rules (extractive operators make no model call):
- topk: one shared workspace of k drafts, the first k by the `consensus` ranking, a heuristic
  of this tool, not the paper's: drafts are ranked by the size of their answer cluster
  (largest first), then drafts with an answer before drafts without, then shorter text first
  (a concise correct derivation is cheaper to read), then branch order.
  With selection `verify` the model's scores rank the drafts instead (pdr_core.run.verify).
- per-sample-topk: generation j of the next round gets its own k drafts, a window of the
  ranking rotated by j over the top min(2k, M) candidates, so the generations see
  different but strong evidence.
- random-k: generation j gets k drafts drawn without replacement by a generator seeded
  from the run seed, the round and j (bootstrapped workspaces, reproducible).
- summary: one model call writes the workspace (see prompts.SUMMARY).

An extractive workspace gives each of its k drafts an equal share of kappa and cuts each
draft to its share, head and tail kept; what was kept and cut per draft is recorded on the
distill node (see `pdr_core.run.workspace.extract`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from pdr_core.answer_forms import normalize_answer
from pdr_core.answers import AnswerKey, answer_clusters, majority_vote
from pdr_core.prompts import DRAFT_ITEM, SUMMARY_ITEM
from pdr_core.tokens import estimate_tokens


@dataclass(frozen=True)
class Draft:
    """A finished generation a workspace may draw on."""

    node_id: str
    branch: int
    text: str
    answer: str | None


def rank_drafts(drafts: Sequence[Draft], key: AnswerKey = normalize_answer) -> list[Draft]:
    """Drafts in `consensus` order, topk's preference (see module docstring); `key` says
    which answers are the same (see `answer_clusters`)."""
    size = {}
    for _, members in answer_clusters([d.answer for d in drafts], key):
        for index in members:
            size[index] = len(members)
    order = sorted(
        range(len(drafts)),
        key=lambda i: (
            -size.get(i, 0),
            drafts[i].answer is None,
            estimate_tokens(drafts[i].text),
            drafts[i].branch,
        ),
    )
    return [drafts[i] for i in order]


def select_topk(ranked: Sequence[Draft], k: int) -> list[Draft]:
    """The first k of `ranked` (drafts in the selection's order: consensus or verify)."""
    return list(ranked[:k])


def select_per_sample(ranked: Sequence[Draft], k: int, generations: int
                      ) -> list[list[Draft]]:
    """One selection of k drafts for each of `generations` next-round generations, from
    `ranked` (drafts in the selection's order)."""
    pool = ranked[: max(k, min(len(ranked), 2 * k))]
    return [[pool[(j + i) % len(pool)] for i in range(min(k, len(pool)))]
            for j in range(generations)]


def select_random(
    drafts: Sequence[Draft], k: int, generations: int, seed: int, round_: int
) -> list[list[Draft]]:
    """k drafts drawn at random for each generation, reproducible from the seed."""
    selections = []
    for j in range(generations):
        rng = random.Random(f"{seed}:{round_}:{j}")
        picked = rng.sample(range(len(drafts)), min(k, len(drafts)))
        selections.append([drafts[i] for i in sorted(picked)])
    return selections


def answer_tally(drafts: Sequence[Draft], key: AnswerKey = normalize_answer) -> str:
    """'42 (3 attempts), 41 (1 attempt)' or 'none' when no draft gave an answer."""
    parts = []
    for _, members in answer_clusters([d.answer for d in drafts], key):
        shown = drafts[members[0]].answer
        parts.append(f"{shown} ({len(members)} attempt{'s' if len(members) != 1 else ''})")
    missing = sum(1 for d in drafts if d.answer is None)
    if missing:
        parts.append(f"no answer ({missing} attempt{'s' if missing != 1 else ''})")
    return ", ".join(parts) or "none"


def format_drafts(drafts: Sequence[Draft], labelled: bool = True) -> str:
    """Drafts laid out whole for a prompt; `labelled` adds each one's extracted answer."""
    return "\n\n".join(draft_item(i, d, d.text, labelled) for i, d in enumerate(drafts))


def draft_item(index: int, draft: Draft, text: str, labelled: bool = True) -> str:
    """Draft `index` (from 0) with `text` standing for its text."""
    if not labelled:
        return SUMMARY_ITEM.format(index=index + 1, text=text)
    return DRAFT_ITEM.format(index=index + 1, answer=draft.answer or "none", text=text)


def vote(drafts: Sequence[Draft]) -> str | None:
    """Majority answer, ties to the earliest draft."""
    answer, _ = majority_vote([d.answer for d in drafts])
    return answer


def final_vote(drafts: Sequence[Draft], round_: int, key: AnswerKey = normalize_answer
               ) -> tuple[str | None, str | None]:
    """The final answer of a last round, and the record of how it was selected: None for a
    single draft (nothing to select), else the vote and its count."""
    answer, count = majority_vote([d.answer for d in drafts], key)
    if len(drafts) <= 1:
        return answer, None
    ids = ", ".join(d.node_id for d in drafts)
    return answer, (f"majority vote over the {len(drafts)} drafts of round {round_} ({ids}): "
                    f"{answer if answer is not None else 'no answer'} with {count} of "
                    f"{len(drafts)}")
