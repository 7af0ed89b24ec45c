"""What a configuration will cost before anything runs: calls, worst-case budgets, price."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pdr_core.config import RunConfig
from pdr_core.run.api import Method
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


@dataclass
class _Tally:
    """Worst-case tokens summed so far: on the sequential path, in all, prompt and output."""

    seq: int = 0
    total: int = 0
    prompt: int = 0
    completion: int = 0

    def add(self, prompt: int, completion: int, calls: int) -> None:
        """`calls` calls of this size made together: the path waits on one of them."""
        self.seq += prompt + completion
        self.total += calls * (prompt + completion)
        self.prompt += calls * prompt
        self.completion += calls * completion


PromptEstimate = Callable[..., int]


def _prompt_estimate(config: RunConfig, question: str) -> PromptEstimate:
    """Tokens of a call's prompt: the system prompt, `template` with the question, and
    `extra` tokens of what it reads (candidates, a workspace)."""
    prompts = config.prompts
    system = estimate_tokens(prompts.system) + MESSAGE_OVERHEAD if prompts.system else 0
    question_tokens = estimate_tokens(question)

    def prompt(template: str, *extra: int) -> int:
        return system + MESSAGE_OVERHEAD + estimate_tokens(template) + question_tokens + sum(extra)

    return prompt


def _round_prompt(config: RunConfig, prompt: PromptEstimate, index: int, method: Method,
                  schedule: tuple[int, ...]) -> int:
    """The prompt of one call of round `index`, by what the method's calls read there."""
    prompts = config.prompts
    # A prompt that reads whole candidates holds up to their whole output budgets.
    candidate = config.max_tokens + 16
    if index == 0:
        return prompt(prompts.draft)
    if config.method == "sr":
        return prompt(prompts.sr_refine, config.max_tokens,
                      config.workspace_tokens if config.sr_summary or config.sr_feedback else 0)
    if config.method == "rsa":
        return prompt(prompts.aggregate, config.k * candidate)
    if config.method == "moa":
        return prompt(prompts.synthesize, config.schedule[0] * candidate)
    if config.method == "tournament":
        return prompt(prompts.judge, config.group * candidate)
    if config.method == "select":
        return prompt(prompts.select, config.schedule[0] * candidate)
    if method.schedule is not None:  # a plugin's round may read all of the last
        return prompt(prompts.aggregate, schedule[index - 1] * candidate)
    return prompt(prompts.refine, config.workspace_tokens)


def preview(
    config: RunConfig, question: str, price: tuple[float, float] | None = None
) -> BudgetPreview:
    """Worst case of a complete run: every call writes its whole output budget.

    The prompt of a call is estimated from its template; B_total may be capped by
    `total_budget`, in which case the run stops early rather than exceed it.
    """
    prompt = _prompt_estimate(config, question)
    candidate = config.max_tokens + 16
    method = get_method(config.method)
    schedule = tuple(method.planned(config))
    tally = _Tally()
    for index, width in enumerate(schedule):
        tally.add(_round_prompt(config, prompt, index, method, schedule), config.max_tokens,
                  width)
        last = index == len(schedule) - 1
        if (config.selection == "verify" and not last) or (
                config.final_select == "verify" and last and width > 1):
            # The selection waits for every score: one call on the path.
            tally.add(prompt(config.prompts.verify, candidate), config.max_tokens, width)
        if not last and config.summary_calls:
            tally.add(prompt(config.prompts.summary, width * candidate),
                      config.distill_budget, 1)
    seq, total = tally.seq, tally.total
    if config.total_budget is not None:
        total = min(total, config.total_budget)
        seq = min(seq, total)
    cost = None
    if price is not None:
        spent = tally.prompt + tally.completion
        scale = 1.0
        if config.total_budget is not None and spent:
            scale = min(1.0, config.total_budget / spent)
        cost = scale * (tally.prompt * price[0] + tally.completion * price[1]) / 1e6
    return BudgetPreview(method.planned_calls(config), seq, total, tally.prompt,
                         tally.completion, cost)
