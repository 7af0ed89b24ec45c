"""The budget table: tokens per round, then B_seq and B_total against their caps."""

from __future__ import annotations

from typing import Any

from pdr_core.budgets import longest_token_path
from pdr_core.trace import Node, Trace


def budget_table(trace: Trace) -> list[dict[str, Any]]:
    """Token use per round, then the B_seq and B_total totals against the configured caps.

    Every row has the same keys: `row` (label), `round` (None on totals), `calls`,
    `prompt_tokens`, `completion_tokens`, `tokens`, `largest_call`, `cap` (per-call
    max_tokens on rounds, total_budget on B_total, None where there is none), `share_of_cap`
    and `within_cap` (every call's completion within its own cap; the total within budget).
    Counts follow `compute_budget`: finished calls only, extractive distills excluded.
    """
    max_tokens = trace.config.get("max_tokens")
    # A summary call's cap: its own budget, the per-call budget by default; kappa for runs
    # saved before the distill budget existed.
    distill_cap = (trace.config.get("distill_max_tokens") or max_tokens
                   if "distill_max_tokens" in trace.config
                   else trace.config.get("workspace_tokens"))
    total_budget = trace.config.get("total_budget")
    rounds: dict[int, list[Node]] = {}
    for node in trace.nodes:
        if node.call and node.status != "running":
            rounds.setdefault(node.round, []).append(node)

    rows: list[dict[str, Any]] = []
    for round_, nodes in sorted(rounds.items()):
        largest_completion = max(int(n.usage.get("completion_tokens", 0)) for n in nodes)
        within = True
        for n in nodes:
            cap = distill_cap if n.stage == "distill" else max_tokens
            if isinstance(cap, int) and int(n.usage.get("completion_tokens", 0)) > cap:
                within = False
        rows.append(_row(
            f"Round {round_}", round_, nodes,
            cap=max_tokens if isinstance(max_tokens, int) else None,
            share=(largest_completion / max_tokens
                   if isinstance(max_tokens, int) and max_tokens else None),
            within=within,
        ))

    budget = trace.budget
    settled = [n for nodes in rounds.values() for n in nodes]
    path = set(longest_token_path(trace.nodes)[1])
    seq_nodes = [n for n in settled if n.id in path]
    rows.append(_row("B_seq", None, seq_nodes, cap=None, share=None, within=None,
                     tokens=budget.b_seq))
    has_cap = isinstance(total_budget, int) and total_budget > 0
    rows.append(_row(
        "B_total", None, settled,
        cap=total_budget if has_cap else None,
        share=budget.b_total / total_budget if has_cap else None,
        within=budget.b_total <= total_budget if has_cap else None,
        tokens=budget.b_total,
    ))
    return rows


def _row(
    label: str,
    round_: int | None,
    nodes: list[Node],
    cap: int | None,
    share: float | None,
    within: bool | None,
    tokens: int | None = None,
) -> dict[str, Any]:
    prompt = sum(int(n.usage.get("prompt_tokens", 0)) for n in nodes)
    completion = sum(int(n.usage.get("completion_tokens", 0)) for n in nodes)
    return {
        "row": label,
        "round": round_,
        "calls": len(nodes),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "tokens": prompt + completion if tokens is None else tokens,
        "largest_call": max((n.tokens for n in nodes), default=0),
        "cap": cap,
        "share_of_cap": share,
        "within_cap": within,
    }
