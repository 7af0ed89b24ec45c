"""Before running: the worst-case budget and cost of every arm of an evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from pdr_core.evals.problems import Problem
from pdr_core.evals.spec import (
    EvalSpec,
)
from pdr_core.render.budget_view import budget_cell
from pdr_core.run.preview import preview

# ArmEstimate's fields, in the order shown, with their column titles (as the run view's
# budget table titles its own).
ESTIMATE_COLUMNS = {"label": "Arm", "runs": "Runs", "calls": "Calls",
                    "worst_b_seq": "Worst-case B_seq", "worst_b_total": "Worst-case B_total",
                    "cost_usd": "Cost estimate"}


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


def estimate_rows(arms: Sequence[ArmEstimate]) -> list[dict[str, str]]:
    """The estimate table as people read it: titled columns, counts with separators, the
    cost in dollars (an en dash where no price is known)."""
    return [{title: (budget_cell(None) if a.cost_usd is None else f"${a.cost_usd:,.4f}")
             if key == "cost_usd" else budget_cell(getattr(a, key))
             for key, title in ESTIMATE_COLUMNS.items()} for a in arms]
