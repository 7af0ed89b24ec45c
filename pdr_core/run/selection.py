"""Selection by the model: tournaments of judged groups, and generative selection.

- tournament: N = `width` candidates are drafted, then split, in branch order, into groups
  of G = `group`; `votes` judge calls compare each group's candidates and name one; the
  candidate named by most judges advances (a lone candidate left over advances unjudged).
  Rounds go on until one candidate remains: its answer is the run's. Tie rule: when several
  candidates share the most votes (no judge's choice parsed counts as a tie of all), the
  one listed first in the group, the earliest drafted, advances.
- select (generative selection, universal self-consistency): N candidates are drafted and
  one select call reads them all and names the best; that candidate's answer is the run's.
  A choice that cannot be parsed (or a select call that failed) falls back to a majority
  vote over the candidates, and the run's recorded selection says so.

A choice is the candidate's number, 1 to n, read from the call's text by `parse_choice`.
Judge and select nodes are choices, not answers: they get no answer of their own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pdr_core.extraction import extract_answer
from pdr_core.run.engine import CallSpec, RunContext
from pdr_core.run.kit import candidates_prompt, draft_round
from pdr_core.run.operators import Draft, final_vote

# How a generative selection that fell back to a vote is recorded (the start of its line).
FALLBACK = "generative selection fell back"
# "3", "#3", "Candidate 3", "attempt 3.", "(3)": the whole of a boxed or stated answer.
_CHOICE = re.compile(r"\(?\s*(?:(?:candidate|attempt|solution|option|answer)\s*)?(?:no\.?\s*)?"
                     r"#?\s*(\d{1,4})\s*\)?\.?", re.IGNORECASE)
# "Candidate 3 is the best", "I choose attempt #2": the last such mention in the text.
_MENTION = re.compile(r"\b(?:candidate|attempt|solution|option)\s*(?:no\.?\s*)?#?\s*(\d{1,4})\b",
                      re.IGNORECASE)


def parse_choice(text: str, count: int) -> int | None:
    """The candidate (1..count) that `text` names: its final answer (\\boxed{3}, "Answer:
    Candidate 3"), else its last "candidate N" mention; None when it names none in range."""
    stated = extract_answer(text)
    if stated is not None:
        match = _CHOICE.fullmatch(stated.strip())
        if match and 1 <= int(match.group(1)) <= count:
            return int(match.group(1))
    for found in reversed(list(_MENTION.finditer(text))):
        if 1 <= int(found.group(1)) <= count:
            return int(found.group(1))
    return None


@dataclass(frozen=True)
class GroupResult:
    """One group of a tournament round: who advanced, with how many of the judges' votes."""

    winner: Draft
    votes: int
    judges: int
    tie: bool


def group_winner(members: Sequence[Draft], judgements: Sequence[Draft]) -> GroupResult:
    """The member most judges named; ties (no vote parsed included) to the earliest."""
    counts = [0] * len(members)
    for judgement in judgements:
        choice = parse_choice(judgement.text, len(members))
        if choice is not None:
            counts[choice - 1] += 1
    best = max(counts)
    index = counts.index(best)  # the earliest of those with the most votes
    return GroupResult(members[index], best, len(judgements), counts.count(best) > 1)


async def _judge_round(ctx: RunContext, pool: list[Draft], round_: int
                       ) -> tuple[list[Draft], list[str]]:
    """One tournament round: the candidates that advance, and a line per judged group."""
    config = ctx.config
    groups = [pool[i:i + config.group] for i in range(0, len(pool), config.group)]
    specs = []
    for index, members in enumerate(groups):
        if len(members) > 1:
            messages = candidates_prompt(ctx, config.prompts.judge, members)
            specs += [CallSpec("judge", round_, index * config.votes + vote,
                               [d.node_id for d in members], messages, config.max_tokens)
                      for vote in range(config.votes)]
    judgements = await ctx.call_round(specs)
    advancing, lines = [], []
    for index, members in enumerate(groups):
        if len(members) == 1:
            advancing.append(members[0])
            continue
        mine = [j for j in judgements if j.branch // config.votes == index]
        result = group_winner(members, mine)
        advancing.append(result.winner)
        tie = ", a tie to the earliest" if result.tie else ""
        lines.append(f"round {round_} group {index + 1}: {result.winner.node_id} with "
                     f"{result.votes} of {result.judges} vote(s){tie}")
    return advancing, lines


def fell_back(selection: str | None) -> bool:
    """Whether a run's recorded selection is a generative selection that fell back."""
    return bool(selection) and selection.startswith(FALLBACK)


async def tournament(ctx: RunContext) -> str | None:
    pool = await draft_round(ctx)
    round_, lines = 1, []
    while len(pool) > 1 and not ctx.stopped_on_budget:
        round_ += 1
        pool, outcome = await _judge_round(ctx, pool, round_)
        lines += outcome
    if len(pool) > 1:  # the budget stopped the bracket: the survivors vote
        answer, ctx.selection = final_vote(pool, round_, ctx.task.key)
        return answer
    [winner] = pool
    if lines:
        ctx.selection = (f"tournament: {winner.node_id} won ({'; '.join(lines)})")
    return winner.answer


async def generative_select(ctx: RunContext) -> str | None:
    drafts = await draft_round(ctx)
    if len(drafts) == 1:
        return drafts[0].answer
    spec = CallSpec("select", 2, 0, [d.node_id for d in drafts],
                    candidates_prompt(ctx, ctx.config.prompts.select, drafts),
                    ctx.config.max_tokens)
    choice = await ctx.call(spec)
    index = parse_choice(choice.text, len(drafts)) if choice is not None else None
    if index is None:
        answer, vote = final_vote(drafts, 1, ctx.task.key)
        why = "named no candidate" if choice is not None else "failed"
        ctx.selection = f"{FALLBACK}: r2-select-0 {why}, so {vote}"
        return answer
    chosen = drafts[index - 1]
    ctx.selection = (f"generative selection: r2-select-0 chose candidate {index} of "
                     f"{len(drafts)}, {chosen.node_id}")
    return chosen.answer
