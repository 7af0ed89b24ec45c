"""What every method's stages share: the messages of a call, round 1's drafts, and how a
set of candidates is laid out for a prompt that reads them (aggregate, judge, select)."""

from __future__ import annotations

from collections.abc import Sequence

from pdr_core.config import RunConfig
from pdr_core.providers.base import Message
from pdr_core.run.engine import CallSpec, RunContext
from pdr_core.run.operators import Draft, format_drafts


def user_messages(ctx: RunContext, user: str) -> list[Message]:
    """The run's system message, if any, then `user`."""
    system = ctx.config.prompts.system
    return ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": user}
    ]


def stage_of(config: RunConfig, round_: int) -> str:
    """The stage of round `round_`'s generations in pdr, sr, single and vote."""
    if config.method == "single" or (round_ == config.rounds and round_ > 1):
        return "final"
    return "draft" if round_ == 1 else "refine"


async def draft_round(ctx: RunContext) -> list[Draft]:
    """Round 1: every generation sees the question only."""
    user = ctx.config.prompts.draft.format(question=ctx.question)
    specs = [
        CallSpec(stage_of(ctx.config, 1), 1, branch, [], user_messages(ctx, user),
                 ctx.config.max_tokens)
        for branch in range(ctx.config.schedule[0])
    ]
    return await ctx.call_round(specs)


def candidates_prompt(ctx: RunContext, template: str, candidates: Sequence[Draft]
                      ) -> list[Message]:
    """Messages of a call that reads `candidates`, numbered from 1 as the template's
    {candidates}; their extracted answers are left out so as not to anchor the reader."""
    user = template.format(question=ctx.question, count=len(candidates),
                           candidates=format_drafts(candidates, labelled=False))
    return user_messages(ctx, user)

