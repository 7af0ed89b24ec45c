"""The paper's central comparison: a single pass given the output budget a run spent on its
sequential path (its B_seq), so the two are compared at matched B_seq.

A baseline run is stored named "baseline of RUN_ID" and tagged `baseline`; the CLI
(`python -m pdr_core baseline RUN_ID`), the run view and Compare start it the same way.
"""

from __future__ import annotations

from pdr_core.config import ConfigError, RunConfig
from pdr_core.tokens import estimate_tokens
from pdr_core.trace import Trace


def baseline_config(trace: Trace, context_tokens: int | None = None
                    ) -> tuple[RunConfig, str | None]:
    """A `single` run's configuration whose max_tokens is `trace`'s B_seq, with the run's
    model, endpoint, sampling and templates; and a note when the model's context (given as
    `context_tokens`) capped the budget below B_seq."""
    b_seq = trace.budget.b_seq
    if b_seq <= 0:
        raise ConfigError("run", trace.id, "a run with at least one finished call (its B_seq "
                          "is 0: there is no budget to match)")
    source = trace.run_config
    max_tokens, note = b_seq, None
    if context_tokens is not None:
        # Room for the prompt: the question and the draft template, estimated.
        prompt = estimate_tokens(source.prompts.system + source.prompts.draft + trace.question)
        room = context_tokens - prompt - 16
        if room < 1:
            raise ConfigError("context_tokens", context_tokens,
                              f"more than the prompt's {prompt} tokens")
        if room < b_seq:
            max_tokens = room
            note = (f"capped at {room:,} tokens by the model's context of {context_tokens:,}: "
                    f"below the run's B_seq of {b_seq:,}")
    fields = source.to_dict()
    # What only a several-call method takes is reset: a single pass has nothing to stop
    # early, verify or select among.
    fields.update(method="single", max_tokens=max_tokens, total_budget=None,
                  width_schedule=None, sr_summary=False, stop_when_agree=None,
                  final_select="vote", selection="consensus")
    return RunConfig.from_dict(fields), note


BASELINE_TAG = "baseline"
_NAME = "baseline of "


def baseline_name(source_id: str) -> str:
    """The stored name of the baseline of run `source_id`."""
    return _NAME + source_id


def source_of(name: str | None) -> str | None:
    """The id of the run a baseline was made for, from its stored name; None otherwise."""
    if name and name.startswith(_NAME) and " " not in name[len(_NAME):]:
        return name[len(_NAME):]
    return None


def model_context(provider: object) -> int | None:
    """The model's context in tokens where the provider knows it (the local model's n_ctx)."""
    n_ctx = getattr(provider, "n_ctx", None)
    return n_ctx if isinstance(n_ctx, int) and not isinstance(n_ctx, bool) else None


def matched_note(source: Trace, baseline: Trace) -> str:
    """How `baseline`'s output budget stands to `source`'s B_seq, in a sentence."""
    config = baseline.known_config
    budget = config.max_tokens if config is not None else 0
    b_seq = source.budget.b_seq
    if budget >= b_seq:
        return (f"a single pass with max_tokens {budget:,}, run {source.id}'s B_seq: the "
                "two are compared at matched B_seq")
    return (f"a single pass with max_tokens {budget:,}, capped below run {source.id}'s "
            f"B_seq of {b_seq:,} by the model's context: not a fully matched budget")
