"""Selection by the model's own verification, and the final selection of a last round.

- verify: one verification call per draft (stage "verify", node r{round}-verify-{branch},
  its parent the draft it scores), with the prompt set's `verify` template; the score is
  read by `pdr_core.run.scores.parse_score`. Drafts rank by score, highest first; a draft whose
  score cannot be read (or whose call failed) ranks last; ties keep the consensus order.
  Verification calls are nodes like any other: on the call graph, in B_total, and, as the
  selection that follows depends on them, on the critical path (B_seq).
- select_final: the last round's answer by the configured final selection, `vote` (majority)
  or `verify` (the best-scored draft's answer); recorded on the run when there was a choice.
"""

from __future__ import annotations

from collections.abc import Sequence

from pdr_core.run.engine import CallSpec, RunContext
from pdr_core.run.kit import user_messages
from pdr_core.run.operators import Draft, final_vote, rank_drafts
from pdr_core.run.scores import parse_score, rank_by_score, score_text


async def verify_round(ctx: RunContext, drafts: Sequence[Draft], round_: int
                       ) -> tuple[dict[str, float | None], list[str]]:
    """One verification call per draft of round `round_`: each draft's score by node id
    (None when unreadable or the call failed), and the ids of the verify nodes."""
    template = ctx.config.prompts.verify
    specs = [
        CallSpec("verify", round_, d.branch, [d.node_id],
                 user_messages(ctx, template.format(question=ctx.question, solution=d.text)),
                 ctx.config.max_tokens)
        for d in drafts
    ]
    verdicts = {v.branch: v for v in await ctx.call_round(specs)}
    scores = {d.node_id: parse_score(verdicts[d.branch].text) if d.branch in verdicts else None
              for d in drafts}
    return scores, [verdicts[d.branch].node_id for d in drafts if d.branch in verdicts]


async def rank_verified(ctx: RunContext, drafts: Sequence[Draft], round_: int
                        ) -> tuple[list[Draft], dict[str, float | None], list[str]]:
    """`drafts` ranked by verification (see the module docstring), their scores, and the
    verify nodes' ids."""
    scores, verify_ids = await verify_round(ctx, drafts, round_)
    return rank_by_score(rank_drafts(drafts, ctx.task.key), scores), scores, verify_ids


def ranking_record(ranked: Sequence[Draft], scores: dict[str, float | None]) -> dict:
    """How a verify selection ranked the drafts, as kept on the distill node."""
    return {"by": "verify",
            "scores": [{"node_id": d.node_id, "score": scores.get(d.node_id)} for d in ranked]}


async def select_final(ctx: RunContext, drafts: list[Draft]) -> str | None:
    """The final answer from the last round's drafts, by the configured final selection,
    recorded for the trace when there was more than one draft to choose from."""
    round_ = max((ctx.builder.trace.node(d.node_id).round for d in drafts), default=1)
    if ctx.config.final_select != "verify" or len(drafts) <= 1:
        answer, ctx.selection = final_vote(drafts, round_, ctx.task.key)
        return answer
    ranked, scores, _ = await rank_verified(ctx, drafts, round_)
    best = ranked[0]
    shown = ", ".join(f"{d.node_id} {score_text(scores[d.node_id])}" for d in ranked)
    ctx.selection = (f"verification of the {len(drafts)} drafts of round {round_}: "
                     f"{best.node_id} scored best ({shown}), answer "
                     f"{best.answer if best.answer is not None else 'none'}")
    return best.answer
