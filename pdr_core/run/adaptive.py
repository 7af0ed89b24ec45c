"""Adaptive compute: a multi-round method stops once a round's answers agree.

Agreement is the share of a round's generations (failed ones left out, those without an
answer counted against) that give its most common answer. A round of one generation has
nothing to agree with inside it, so it is compared with the round before: sr stops when a
refinement keeps the previous answer. A stop is recorded as stop reason `converged`; what it
saved (rounds and calls not made, and about how many tokens) is worked out from the trace.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pdr_core.answer_forms import normalize_answer
from pdr_core.answers import AnswerKey, majority_vote
from pdr_core.run.engine import RunContext
from pdr_core.run.operators import Draft
from pdr_core.trace import Trace, gives_answer


def agreement(answers: Sequence[str | None], key: AnswerKey = normalize_answer) -> float:
    """Share of `answers` that give the most common one, the same by `key` (0 with none)."""
    _, count = majority_vote(answers, key)
    return count / len(answers) if answers else 0.0


def converged(ctx: RunContext, drafts: Sequence[Draft], previous: Sequence[Draft] = ()
              ) -> bool:
    """Whether the run should stop after the round of `drafts` (`previous`: the round
    before, for a round of one); sets `ctx.converged` when it should."""
    threshold = ctx.config.stop_when_agree
    if threshold is None:
        return False
    pool = list(drafts) if len(drafts) > 1 else [*drafts, *previous[-1:]]
    if len(pool) < 2 or agreement([d.answer for d in pool], ctx.task.key) < threshold:
        return False
    ctx.converged = True
    return True


@dataclass(frozen=True)
class Savings:
    """What an early stop saved against the configured run: rounds and calls not made,
    and the tokens they would have taken at the run's mean tokens per call."""

    rounds: int
    calls: int
    tokens: int

    def caption(self) -> str:
        return (f"Stopped early: the answers agreed, so {self.rounds} round(s) and "
                f"{self.calls} call(s) were not made (about {self.tokens:,} tokens saved, at "
                f"this run's mean tokens per call).")


def savings(trace: Trace) -> Savings | None:
    """What stopping on agreement saved this run; None when it did not stop so."""
    if trace.stop_reason != "converged":
        return None
    config = trace.known_config
    if config is None:  # an imported trace's settings
        return None
    done = len({n.round for n in trace.nodes if gives_answer(n.stage)})
    budget = trace.budget
    calls = max(config.calls - budget.calls, 0)
    mean = budget.b_total / budget.calls if budget.calls else 0
    return Savings(max(config.rounds - done, 0), calls, round(calls * mean))
