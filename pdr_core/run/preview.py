"""What a configuration will cost before anything runs: calls, worst-case budgets, price."""

from __future__ import annotations

from dataclasses import dataclass

from pdr_core.config import RunConfig
from pdr_core.run.registry import get_method
from pdr_core.tokens import MESSAGE_OVERHEAD, estimate_tokens

# US$ per million tokens (input, output), list prices of common models; a person can
# enter their own in the app, and a local model costs nothing.
KNOWN_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "o3": (2.00, 8.00),
}


@dataclass(frozen=True)
class BudgetPreview:
    calls: int
    worst_b_seq: int
    worst_b_total: int
    worst_prompt_tokens: int
    worst_completion_tokens: int
    cost_usd: float | None


def known_price(model: str) -> tuple[float, float] | None:
    """List price of `model` (longest matching name prefix wins), or None."""
    name = model.lower().split("/")[-1]
    matches = [key for key in KNOWN_PRICES if name == key or name.startswith(key + "-")]
    return KNOWN_PRICES[max(matches, key=len)] if matches else None


def preview(
    config: RunConfig, question: str, price: tuple[float, float] | None = None
) -> BudgetPreview:
    """Worst case of a complete run: every call writes its whole output budget.

    The prompt of a call is estimated from its template; B_total may be capped by
    `total_budget`, in which case the run stops early rather than exceed it.
    """
    method = get_method(config.method)
    schedule = method.planned(config)
    prompts = config.prompts
    system = estimate_tokens(prompts.system) + MESSAGE_OVERHEAD if prompts.system else 0
    question_tokens = estimate_tokens(question)

    def prompt(template: str, *extra: int) -> int:
        return system + MESSAGE_OVERHEAD + estimate_tokens(template) + question_tokens + sum(extra)

    draft_prompt = prompt(prompts.draft)
    kappa = config.workspace_tokens
    seq = total = prompt_sum = completion_sum = 0
    for index, width in enumerate(schedule):
        # A prompt that reads whole candidates holds up to their whole output budgets.
        candidate = config.max_tokens + 16
        if index == 0:
            call_prompt = draft_prompt
        elif config.method == "sr":
            call_prompt = prompt(prompts.sr_refine, config.max_tokens,
                                 kappa if config.sr_summary or config.sr_feedback else 0)
        elif config.method == "rsa":
            call_prompt = prompt(prompts.aggregate, config.k * candidate)
        elif config.method == "moa":
            call_prompt = prompt(prompts.synthesize, config.schedule[0] * candidate)
        elif config.method == "tournament":
            call_prompt = prompt(prompts.judge, config.group * candidate)
        elif config.method == "select":
            call_prompt = prompt(prompts.select, config.schedule[0] * candidate)
        elif method.schedule is not None:  # a plugin's round may read all of the last
            call_prompt = prompt(prompts.aggregate, schedule[index - 1] * candidate)
        else:
            call_prompt = prompt(prompts.refine, kappa)
        seq += call_prompt + config.max_tokens
        total += width * (call_prompt + config.max_tokens)
        prompt_sum += width * call_prompt
        completion_sum += width * config.max_tokens
        last = index == len(schedule) - 1
        if (config.selection == "verify" and not last) or (
                config.final_select == "verify" and last and width > 1):
            verify = prompt(prompts.verify, candidate) + config.max_tokens
            seq += verify  # the selection waits for every score: one call on the path
            total += width * verify
            prompt_sum += width * (verify - config.max_tokens)
            completion_sum += width * config.max_tokens
        if not last and config.summary_calls:
            distill_prompt = prompt(prompts.summary, width * candidate)
            distill_out = config.distill_budget
            seq += distill_prompt + distill_out
            total += distill_prompt + distill_out
            prompt_sum += distill_prompt
            completion_sum += distill_out
    if config.total_budget is not None:
        total = min(total, config.total_budget)
        seq = min(seq, total)
    cost = None
    if price is not None:
        scale = 1.0
        if config.total_budget is not None and prompt_sum + completion_sum:
            scale = min(1.0, config.total_budget / (prompt_sum + completion_sum))
        cost = scale * (prompt_sum * price[0] + completion_sum * price[1]) / 1e6
    return BudgetPreview(method.planned_calls(config), seq, total, prompt_sum,
                         completion_sum, cost)
