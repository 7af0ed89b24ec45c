"""Mixture of agents (moa, arXiv 2406.04692): layers of proposers drawn from several models
or endpoints, each layer after the first reading every response of the layer before, then
one aggregator.

Proposer j calls its route in every layer (the setting `proposers`: `MODEL@URL` or `MODEL`
on the run's endpoint, comma-separated; none: `width` calls of the run's own model; see
pdr_core.providers.routes for which key goes where). Layer 1 sees the question (stage
draft); layer l > 1 the question and every response of layer l-1 (stage propose, the
`synthesize` template); the aggregator (the setting `aggregator`, else the run's own model)
synthesizes the last layer's responses into the answer (stage final). Node ids:
r1-draft-j, r{l}-propose-j, r{L+1}-final-0. Each routed node records its model and endpoint.
"""

from __future__ import annotations

from collections.abc import Sequence

from pdr_core.config import MOA_LAYERS
from pdr_core.providers.base import ProviderError
from pdr_core.providers.routes import Route, parse_route
from pdr_core.run.engine import CallSpec, RunContext, RunFailed
from pdr_core.run.kit import candidates_prompt, user_messages
from pdr_core.run.operators import Draft


def aggregator_route(settings: dict) -> Route | None:
    """The aggregator's route; None: the run's own endpoint and model."""
    text = str(settings.get("aggregator") or "").strip()
    return parse_route(text) if text else None


def _layer(ctx: RunContext, layer: int, routes: Sequence[Route | None],
           previous: Sequence[Draft]) -> list[CallSpec]:
    config = ctx.config
    if layer == 1:
        messages = user_messages(ctx, config.prompts.draft.format(question=ctx.question))
    else:
        messages = candidates_prompt(ctx, config.prompts.synthesize, previous)
    stage = "draft" if layer == 1 else "propose"
    parents = [d.node_id for d in previous]
    return [CallSpec(stage, layer, branch, parents, messages, config.max_tokens, route=route)
            for branch, route in enumerate(routes)]


async def moa(ctx: RunContext) -> str | None:
    config = ctx.config
    routes = config.moa_routes
    aggregator = aggregator_route(config.method_settings)
    try:  # a route the key rule refuses stops the run before any call
        for route in (*routes, aggregator):
            ctx.routes.provider(route)
    except ProviderError as exc:
        raise RunFailed(f"mixture of agents cannot call a proposer: {exc}") from None
    layers = config.method_settings.get("layers", MOA_LAYERS)
    previous: list[Draft] = []
    for layer in range(1, layers + 1):
        if ctx.stopped_on_budget:
            break
        previous = await ctx.call_round(_layer(ctx, layer, routes, previous))
    [final] = await ctx.call_round([
        CallSpec("final", layers + 1, 0, [d.node_id for d in previous],
                 candidates_prompt(ctx, config.prompts.synthesize, previous),
                 config.max_tokens, route=aggregator)])
    ids = ", ".join(d.node_id for d in previous)
    ctx.selection = f"the aggregator ({final.node_id}) over {ids}"
    return final.answer
