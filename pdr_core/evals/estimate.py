"""Before running: the worst-case budget and cost of every arm of an evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from pdr_core.evals.problems import Problem
from pdr_core.evals.spec import (
    EvalSpec,
)
from pdr_core.run.preview import preview


@dataclass(frozen=True)
class ArmEstimate:
    label: str
    runs: int
    calls: int
    worst_b_seq: int  # of the longest question
    worst_b_total: int  # summed over the arm's runs
    cost_usd: float | None


def estimate(spec: EvalSpec, problems: Sequence[Problem],
             price: tuple[float, float] | None = None) -> list[ArmEstimate]:
    """Worst-case budget of every arm: `preview` of its config on each problem."""
    arms = []
    for setting in spec.settings():
        config = spec.config(setting)
        if setting.matched:  # a single pass at most the arm's worst B_seq on each problem
            source = spec.config(setting.source)
            previews = [preview(replace(config, max_tokens=preview(source, p.question)
                                        .worst_b_seq), p.question, price) for p in problems]
        else:
            previews = [preview(config, p.question, price) for p in problems]
        costs = [p.cost_usd for p in previews]
        arms.append(ArmEstimate(
            setting.label, len(previews), sum(p.calls for p in previews),
            max((p.worst_b_seq for p in previews), default=0),
            sum(p.worst_b_total for p in previews),
            None if price is None else sum(c or 0.0 for c in costs),
        ))
    return arms
