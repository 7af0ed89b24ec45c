"""The budget table as people read it: titled columns and formatted cells, for the run view
and the offline report alike (the numbers come from `viz.budget_table`)."""

from __future__ import annotations

from typing import Any

from pdr_core.render.budget import budget_table
from pdr_core.trace import Trace

# budget_table's keys, in the order shown, with their column titles.
COLUMNS = {
    "row": "", "calls": "Calls", "prompt_tokens": "Prompt tokens",
    "completion_tokens": "Completion tokens", "tokens": "Tokens", "largest_call": "Largest call",
    "cap": "Cap", "share_of_cap": "Share of cap", "within_cap": "Within cap",
}


def budget_cell(value: Any) -> str:
    """One cell as text: an en dash for no value, ✓/✗, a share as a percentage, counts
    with thousands separators."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, float):
        return f"{value:.0%}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def budget_rows(trace: Trace) -> list[dict[str, str]]:
    """The rows of `budget_table(trace)` keyed by column title, every cell formatted."""
    return [{title: budget_cell(row[key]) for key, title in COLUMNS.items()}
            for row in budget_table(trace)]
