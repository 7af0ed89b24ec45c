"""Example problems for the Run page, each with its reference answer: a few small ones the
demo model can manage, then the first problems of each built-in benchmark."""

from __future__ import annotations

from dataclasses import dataclass

from pdr_core.evals.benchmarks import BENCHMARKS
from pdr_core.evals.datasets import load_benchmark

# Problems taken from the head of each built-in benchmark.
PER_BENCHMARK = 3


@dataclass(frozen=True)
class Example:
    title: str
    question: str
    answer: str


SMALL: tuple[Example, ...] = (
    Example("Arithmetic (easy, suits the demo model)", "What is 17 * 3 + 1?", "52"),
    Example("Linear equation", "If 3x + 7 = 25, what is x?", "6"),
    Example(
        "Average speed",
        "A train travels 120 km in 1.5 hours. What is its average speed in km/h?",
        "80",
    ),
    Example("Sum of odd numbers", "What is the sum of the first 50 positive odd integers?",
            "2500"),
    Example("Divisors", "How many positive divisors does 360 have?", "24"),
    Example("Modular arithmetic", "What is the remainder when 2^100 is divided by 7?", "2"),
)


def _preview(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def benchmark_examples(per_benchmark: int = PER_BENCHMARK) -> list[Example]:
    """The first problems of every built-in benchmark, titled by set, id and opening."""
    found = []
    for bench in BENCHMARKS:
        for problem in load_benchmark(bench.name, per_benchmark):
            found.append(Example(f"{bench.title} · {problem.id}: {_preview(problem.question)}",
                                 problem.question, problem.answer))
    return found


def examples() -> list[Example]:
    """Every example the Run page offers: the small ones first."""
    return [*SMALL, *benchmark_examples()]
