"""Recursive Self-Aggregation (rsa, arXiv 2509.26626).

A population of N = `width` candidates is drafted from the question; then at each of
T = `depth` aggregation steps every one of N new candidates is written from the question
and K = `k` distinct candidates of the previous population, drawn at random by a generator
seeded from the run's seed, the round and the candidate (`operators.select_random`), so a
run with the same seed draws the same subsets. The answer is a majority vote over the last
population (or the best-verified candidate, with final_select `verify`), or, with
final_select `aggregate`, one more aggregation call (width 1, K drawn
the same way) writes it. Node ids: r1-draft-j, then r{t+1}-aggregate-j for step t.
"""

from __future__ import annotations

from pdr_core.run.adaptive import converged
from pdr_core.run.engine import CallSpec, RunContext
from pdr_core.run.kit import candidates_prompt, draft_round
from pdr_core.run.operators import Draft, select_random
from pdr_core.run.verify import select_final


async def aggregate_round(ctx: RunContext, population: list[Draft], round_: int,
                          width: int, stage: str = "aggregate") -> list[Draft]:
    """`width` aggregation calls of round `round_`, each over its own K of `population`."""
    config = ctx.config
    subsets = select_random(population, config.k, width, config.seed, round_)
    specs = [
        CallSpec(stage, round_, branch, [d.node_id for d in subset],
                 candidates_prompt(ctx, config.prompts.aggregate, subset), config.max_tokens)
        for branch, subset in enumerate(subsets)
    ]
    return await ctx.call_round(specs)


async def rsa(ctx: RunContext) -> str | None:
    config = ctx.config
    population = await draft_round(ctx)
    round_ = 1
    for _ in range(config.depth):
        if ctx.stopped_on_budget or converged(ctx, population):
            break
        round_ += 1
        population = await aggregate_round(ctx, population, round_, config.width)
    if config.final_select == "aggregate" and not ctx.stopped_on_budget:
        [final] = await aggregate_round(ctx, population, round_ + 1, 1, stage="final")
        ids = ", ".join(ctx.builder.trace.node(final.node_id).parent_ids)
        ctx.selection = f"one final aggregation ({final.node_id}) over {ids}"
        return final.answer
    return await select_final(ctx, population)
