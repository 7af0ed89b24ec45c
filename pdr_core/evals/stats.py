"""Statistics for evaluations: Wilson score intervals and McNemar's exact test.

Standard library only (math.comb, statistics.NormalDist): exact for the sample sizes a
benchmark has, and nothing to install.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from statistics import NormalDist
from typing import TypeVar

K = TypeVar("K")


def z_score(confidence: float = 0.95) -> float:
    """The two-sided normal quantile: 1.96 for 95%."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence {confidence!r} must be between 0 and 1")
    return NormalDist().inv_cdf(1 - (1 - confidence) / 2)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion; (0, 1) when there is no trial.

    Unlike the normal approximation it stays inside [0, 1] and is not empty at 0/n or n/n,
    which matters for the small problem sets an evaluation often has.
    """
    if n < 0 or not 0 <= successes <= max(n, 0):
        raise ValueError(f"successes={successes}, n={n}: need 0 <= successes <= n")
    if n == 0:
        return 0.0, 1.0
    z = z_score(confidence)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # At 0/n and n/n the bound is exactly 0 or 1; rounding would leave 1e-17 there.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts.

    `b` pairs where only the first method was right, `c` where only the second was: under
    the null each discordant pair is a fair coin, so p = 2 * P(Binomial(b+c, 1/2) <=
    min(b, c)), capped at 1. Computed in exact integers.
    """
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must not be negative: b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1))
    return float(min(Fraction(1), Fraction(2 * tail, 2**n)))


@dataclass(frozen=True)
class PairedComparison:
    """Two methods graded on the same problems, and McNemar's exact test on them."""

    a: str
    b: str
    pairs: int
    both_right: int
    only_a: int
    only_b: int
    both_wrong: int
    p_value: float
    alpha: float

    @property
    def accuracy_a(self) -> float | None:
        return (self.both_right + self.only_a) / self.pairs if self.pairs else None

    @property
    def accuracy_b(self) -> float | None:
        return (self.both_right + self.only_b) / self.pairs if self.pairs else None

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha

    def verdict(self) -> str:
        """One sentence a person can read."""
        if not self.pairs:
            return f"No problem has a graded run of both {self.a} and {self.b}."
        acc_a, acc_b = self.accuracy_a or 0.0, self.accuracy_b or 0.0
        head = (f"{self.a} {acc_a:.1%} vs {self.b} {acc_b:.1%} on {self.pairs} problems "
                f"({self.only_a} won only by {self.a}, {self.only_b} only by {self.b}): "
                f"McNemar exact p = {self.p_value:.4g}")
        if self.significant:
            better = self.a if self.only_a > self.only_b else self.b
            return f"{head} < {self.alpha:g}: {better} is significantly better."
        return f"{head} >= {self.alpha:g}: no significant difference."


def paired_comparison(a: Mapping[K, bool], b: Mapping[K, bool], alpha: float = 0.05,
                      name_a: str = "A", name_b: str = "B") -> PairedComparison:
    """Compare two methods' correctness on the problems both were graded on."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha {alpha!r} must be between 0 and 1")
    shared = [key for key in a if key in b]
    both = sum(1 for k in shared if a[k] and b[k])
    only_a = sum(1 for k in shared if a[k] and not b[k])
    only_b = sum(1 for k in shared if b[k] and not a[k])
    neither = len(shared) - both - only_a - only_b
    return PairedComparison(name_a, name_b, len(shared), both, only_a, only_b, neither,
                            mcnemar_exact(only_a, only_b), alpha)
