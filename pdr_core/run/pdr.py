"""PDR and its baselines as async stage functions over the one engine.

- pdr: parallel drafts, distilled into a bounded workspace, refined from it, round by round.
- sr: sequential refinement, the width-1 case.
- single: one long call with the whole per-call budget.
- vote: `width` independent samples and a majority vote (self-consistency).

pdr and sr stop early once a round's answers agree (`stop_when_agree`, see
pdr_core.run.adaptive).
"""

from __future__ import annotations

from pdr_core.run.adaptive import converged
from pdr_core.run.engine import CallSpec, RunContext
from pdr_core.run.kit import draft_round, stage_of, user_messages
from pdr_core.run.operators import (
    Draft,
    answer_tally,
    format_drafts,
    rank_drafts,
    select_per_sample,
    select_random,
    select_topk,
)
from pdr_core.run.verify import rank_verified, ranking_record, select_final
from pdr_core.run.workspace import counter_of, extract


async def summarize(ctx: RunContext, drafts: list[Draft], round_: int) -> tuple[str, str]:
    """One summary call over `drafts`: (its node id, the workspace it wrote)."""
    config = ctx.config
    user = config.prompts.summary.format(
        question=ctx.question,
        drafts=format_drafts(drafts, labelled=False),
        answer_tally=answer_tally(drafts, ctx.task.key),
        workspace_tokens=config.workspace_tokens,
    )
    spec = CallSpec("distill", round_, 0, [d.node_id for d in drafts],
                    user_messages(ctx, user), config.distill_budget, config.workspace_tokens)
    [summary] = await ctx.call_round([spec])
    return summary.node_id, summary.text


async def distill(ctx: RunContext, drafts: list[Draft], round_: int,
                  generations: int) -> list[tuple[str, str]]:
    """Workspaces for the next round's generations: (distill node id, workspace text).

    Shared operators return one workspace; per-sample operators one per generation.
    """
    config = ctx.config
    kappa = config.workspace_tokens
    if config.distill == "summary":
        return [await summarize(ctx, drafts, round_)]
    key = ctx.task.key
    ranked, verified, ranking = rank_drafts(drafts, key), [], None
    if config.selection == "verify":  # the model's scores rank the drafts, not consensus
        ranked, scores, verified = await rank_verified(ctx, drafts, round_)
        ranking = ranking_record(ranked, scores)
    if config.distill in ("topk", "feedback"):
        selections = [select_topk(ranked, config.k)]
    elif config.distill == "per-sample-topk":
        selections = select_per_sample(ranked, config.k, generations)
    else:
        selections = select_random(drafts, config.k, generations, config.seed, round_)
    workspaces = []
    for branch, selected in enumerate(selections):
        if config.distill == "feedback":  # the programs with their test results
            assert ctx.task.code is not None  # run() refuses feedback on other tasks
            from pdr_core.code.feedback import feedback_workspace  # code runs only

            text, info = await feedback_workspace(selected, ctx.task.code, kappa,
                                                  counter_of(ctx.provider))
        else:
            text, info = await extract(selected, kappa, counter_of(ctx.provider))
        if ranking is not None:
            info = {**info, "ranking": ranking}
        node_id = ctx.record_extract(round_, branch, selected, text, info, verified)
        workspaces.append((node_id, text))
    return workspaces


async def pdr(ctx: RunContext) -> str | None:
    config = ctx.config
    drafts, previous = await draft_round(ctx), []
    for round_ in range(2, config.rounds + 1):
        if ctx.stopped_on_budget or converged(ctx, drafts, previous):
            break
        width = config.schedule[round_ - 1]
        workspaces = await distill(ctx, drafts, round_ - 1, width)
        specs = []
        for branch in range(width):
            distill_id, workspace = workspaces[branch % len(workspaces)]
            user = config.prompts.refine.format(question=ctx.question, workspace=workspace)
            specs.append(CallSpec(stage_of(config, round_), round_, branch, [distill_id],
                                  user_messages(ctx, user), config.max_tokens))
        previous, drafts = drafts, await ctx.call_round(specs)
    return await select_final(ctx, drafts)


async def sr(ctx: RunContext) -> str | None:
    """Refine one answer: round r sees the question and the previous solution (once), plus,
    with `sr_summary`, a summary call's notes on it, or with `sr_feedback` what its tests
    said (an extractive distill node, no call)."""
    config = ctx.config
    [candidate] = await draft_round(ctx)
    previous: list[Draft] = []
    for round_ in range(2, config.rounds + 1):
        if ctx.stopped_on_budget or converged(ctx, [candidate], previous):
            break
        previous = [candidate]
        parents, notes = [candidate.node_id], ""
        if config.sr_summary:
            distill_id, notes = await summarize(ctx, [candidate], round_ - 1)
            parents = [distill_id, candidate.node_id]
        elif config.sr_feedback:
            assert ctx.task.code is not None  # run() refuses feedback on other tasks
            from pdr_core.code.feedback import report_workspace  # code runs only

            notes, info = await report_workspace(candidate, ctx.task.code,
                                                 config.workspace_tokens,
                                                 counter_of(ctx.provider))
            parents = [ctx.record_extract(round_ - 1, 0, [candidate], notes, info),
                       candidate.node_id]
        user = config.prompts.sr_refine.format(
            question=ctx.question, draft=candidate.text, workspace=notes
        )
        spec = CallSpec(stage_of(config, round_), round_, 0, parents,
                        user_messages(ctx, user), config.max_tokens)
        [candidate] = await ctx.call_round([spec])
    return candidate.answer


async def single(ctx: RunContext) -> str | None:
    [only] = await draft_round(ctx)
    return only.answer


async def majority(ctx: RunContext) -> str | None:
    return await select_final(ctx, await draft_round(ctx))
