"""Built-in example problems for the Run page, each with its reference answer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    title: str
    question: str
    answer: str


EXAMPLES: tuple[Example, ...] = (
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
    Example(
        "AIME 2024 (hard)",
        "There exist real numbers $x$ and $y$, both greater than 1, such that "
        "$\\log_x\\left(y^x\\right)=\\log_y\\left(x^{4y}\\right)=10$. Find $xy$.",
        "25",
    ),
)
