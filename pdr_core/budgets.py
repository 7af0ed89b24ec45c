"""B_total and B_seq: what a run's calls cost, and the critical path through its call graph."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pdr_core.trace import Node


@dataclass
class Budget:
    b_seq: int = 0
    b_total: int = 0
    calls: int = 0


def compute_budget(nodes: Iterable[Node]) -> Budget:
    """B_total sums every settled call; B_seq is the token-weighted longest path through
    the call graph (see `longest_token_path`)."""
    nodes = list(nodes)
    calls = [n for n in nodes if is_settled_call(n)]
    b_seq, _ = longest_token_path(nodes)
    return Budget(b_seq=b_seq, b_total=sum(n.tokens for n in calls), calls=len(calls))


def longest_token_path(nodes: Iterable[Node]) -> tuple[int, list[str]]:
    """B_seq and the ids of the path that sets it, root first.

    A node weighs its prompt plus completion tokens when it is a settled call and nothing
    otherwise (an extractive workspace, a call still running), so the heaviest path passes
    through extractive nodes without cost and through every distill or other call it
    depends on. One rule for every method and shape: forks, resumed runs and irregular
    schedules included.
    """
    total, path = critical_path(nodes, settled_tokens, operator.add)
    return int(total), path


def is_settled_call(node: Node) -> bool:
    """A call that has ended, ok or failed: what the budgets count."""
    return node.call and node.status != "running"


def settled_tokens(node: Node) -> float:
    """A node's weight on the token critical path: its tokens if it is a settled call."""
    return node.tokens if is_settled_call(node) else 0


def critical_path(nodes: Iterable[Node], weight: Callable[[Node], float],
                  combine: Callable[[float, float], float]) -> tuple[float, list[str]]:
    """The heaviest path through the call graph and its value, ids root first.

    The graph has an edge from each parent id to its node; a node's value is
    `combine(weight(node), value of its heaviest parent)`: summed tokens give B_seq
    (`longest_token_path`), the latest finish time (`max`) gives the latency critical
    path. Parents precede their node in a trace (the engine emits them so, and imports are
    checked for it); a parent id that does not is ignored, so nothing can loop. Ties go to
    the parent listed first.
    """
    best: dict[str, tuple[float, str | None]] = {}
    for node in nodes:
        before = [p for p in node.parent_ids if p in best]
        previous = max(before, key=lambda p: best[p][0], default=None)
        value = weight(node)
        best[node.id] = (combine(value, best[previous][0]) if previous else value, previous)
    if not best:
        return 0, []
    end: str | None = max(best, key=lambda i: best[i][0])
    total = best[end][0]
    path = []
    while end is not None:
        path.append(end)
        end = best[end][1]
    return total, path[::-1]
