"""Generated problems whose answers are computed: multi-step arithmetic word problems,
linear equations and modular arithmetic, at three difficulties, reproducible by seed
(`gen:KIND:N[:DIFFICULTY][:seed=S]`)."""

from __future__ import annotations

import random
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from pdr_core.evals.problems import DatasetError, Problem

KINDS = ("arith", "linear", "mod")
DIFFICULTIES = ("easy", "medium", "hard")
MAX_GENERATED = 10_000

_NAMES = ("Maya", "Leo", "Priya", "Tomas", "Aisha", "Kenji", "Sofia", "Omar", "Ines", "Noah")
_ITEMS = ("marbles", "stickers", "apples", "coins", "cards", "pencils", "shells", "stamps")
# Per difficulty: (steps after the start, largest start factor, largest amount added or
# removed, largest running total a multiplication may reach).
_ARITH_LEVELS = {
    "easy": ((1, 1), 9, 20, 200),
    "medium": ((2, 3), 15, 60, 1_000),
    "hard": ((4, 5), 30, 250, 20_000),
}
_MULTIPLIER_WORDS = {2: "doubles", 3: "triples"}


def _arith(rng: random.Random, difficulty: str) -> tuple[str, str, dict[str, Any]]:
    (low, high), factor_max, amount_max, total_max = _ARITH_LEVELS[difficulty]
    name, item = rng.choice(_NAMES), rng.choice(_ITEMS)
    boxes, per_box = rng.randint(2, factor_max), rng.randint(2, factor_max)
    value = boxes * per_box
    sentences = [f"{name} has {boxes} boxes of {item}, with {per_box} {item} in each box."]
    steps: list[list[Any]] = []
    for _ in range(rng.randint(low, high)):
        divisors = [d for d in range(2, 7) if value % d == 0 and value // d >= 2]
        options = ["add"] + (["sub"] if value > 1 else [])
        options += ["mul"] if value * 2 <= total_max else []
        options += ["div"] if divisors else []
        op = rng.choice(options)
        if op == "add":
            amount = rng.randint(1, amount_max)
            value += amount
            sentences.append(f"Then {name} buys {amount} more {item}.")
        elif op == "sub":
            amount = rng.randint(1, min(value - 1, amount_max))
            value -= amount
            sentences.append(f"Then {name} gives away {amount} {item}.")
        elif op == "mul":
            amount = rng.choice([k for k in (2, 3, 4) if value * k <= total_max])
            value *= amount
            if amount in _MULTIPLIER_WORDS:
                sentences.append(f"Then the number of {item} {name} has "
                                 f"{_MULTIPLIER_WORDS[amount]}.")
            else:
                sentences.append(f"Then {name}'s collection grows to {amount} times its size.")
        else:
            amount = rng.choice(divisors)
            value //= amount
            sentences.append(f"Then {name} splits the {item} into {amount} equal piles "
                             "and keeps only one pile.")
        steps.append([op, amount])
    sentences.append(f"How many {item} does {name} have now?")
    params = {"boxes": boxes, "per_box": per_box, "steps": steps}
    return " ".join(sentences), str(_apply_steps(boxes * per_box, steps)), params


def _apply_steps(value: int, steps: list[list[Any]]) -> int:
    for op, amount in steps:
        if op == "add":
            value += amount
        elif op == "sub":
            value -= amount
        elif op == "mul":
            value *= amount
        else:
            value //= amount
    return value


def _linear_side(terms: list[tuple[int, str]]) -> str:
    """`[(3, "x"), (-5, "")]` -> `3x - 5`."""
    text = ""
    for coefficient, var in terms:
        if coefficient == 0:
            continue
        magnitude = abs(coefficient)
        body = (var if magnitude == 1 and var else f"{magnitude}{var}")
        if not text:
            text = ("-" if coefficient < 0 else "") + body
        else:
            text += (" - " if coefficient < 0 else " + ") + body
    return text or "0"


def _nonzero(rng: random.Random, low: int, high: int) -> int:
    return rng.choice([v for v in range(low, high + 1) if v != 0])


def _format_fraction(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else \
        f"{value.numerator}/{value.denominator}"


def _linear(rng: random.Random, difficulty: str) -> tuple[str, str, dict[str, Any]]:
    if difficulty == "easy":
        # a x + b = c, integer root
        x, a, b = rng.randint(-10, 10), rng.randint(2, 9), _nonzero(rng, -20, 20)
        equation = f"{_linear_side([(a, 'x'), (b, '')])} = {a * x + b}"
        params = {"a": a, "b": b, "rhs": a * x + b}
        root = Fraction(x)
    elif difficulty == "medium":
        # a x + b = c x + d, integer root
        x, a = rng.randint(-15, 15), _nonzero(rng, -9, 12)
        c = rng.choice([v for v in range(-9, 13) if v not in (0, a)])
        b = _nonzero(rng, -30, 30)
        d = (a - c) * x + b
        equation = f"{_linear_side([(a, 'x'), (b, '')])} = {_linear_side([(c, 'x'), (d, '')])}"
        params = {"a": a, "b": b, "c": c, "d": d}
        root = Fraction(x)
    else:
        # a(x + b) - c = d x + e, root usually a fraction
        a = rng.randint(2, 9)
        d = rng.choice([v for v in range(-9, 10) if v not in (0, a)])
        b, c, e = _nonzero(rng, -12, 12), rng.randint(1, 30), _nonzero(rng, -40, 40)
        inner = _linear_side([(1, "x"), (b, "")])
        equation = f"{a}({inner}) - {c} = {_linear_side([(d, 'x'), (e, '')])}"
        params = {"a": a, "b": b, "c": c, "d": d, "e": e}
        root = Fraction(e + c - a * b, a - d)
    return f"Solve for x: {equation}. Give x as an integer or a reduced fraction.", \
        _format_fraction(root), params


def _mod(rng: random.Random, difficulty: str) -> tuple[str, str, dict[str, Any]]:
    if difficulty == "easy":
        a, m = rng.randint(100, 9_999), rng.randint(3, 30)
        expression, value = str(a), a
        params = {"a": a, "m": m}
    elif difficulty == "medium":
        a, b, c = rng.randint(100, 999), rng.randint(10, 999), rng.randint(1, 999)
        m = rng.randint(7, 60)
        expression, value = f"{a} × {b} + {c}", a * b + c
        params = {"a": a, "b": b, "c": c, "m": m}
    else:
        a, e, m = rng.randint(2, 50), rng.randint(50, 2_000), rng.randint(7, 97)
        expression, value = f"{a}^{e}", pow(a, e, m)
        params = {"a": a, "e": e, "m": m}
    return f"What is the remainder when {expression} is divided by {m}?", \
        str(value % m), params


_GENERATORS: dict[str, Callable[[random.Random, str], tuple[str, str, dict[str, Any]]]] = {
    "arith": _arith,
    "linear": _linear,
    "mod": _mod,
}


def generate(kind: str, n: int, difficulty: str = "medium", seed: int = 0) -> list[Problem]:
    """`n` generated problems of `kind`; the same arguments give the same problems, and a
    larger `n` extends a smaller one (each problem has its own random stream)."""
    if kind not in _GENERATORS:
        raise DatasetError(f"unknown generator {kind!r}: use one of {', '.join(KINDS)}")
    if difficulty not in DIFFICULTIES:
        raise DatasetError(f"unknown difficulty {difficulty!r}: use one of "
                           f"{', '.join(DIFFICULTIES)}")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_GENERATED:
        raise DatasetError(f"problem count {n!r}: a whole number from 1 to {MAX_GENERATED}")
    problems = []
    for index in range(n):
        rng = random.Random(f"pdr-gen:{kind}:{difficulty}:{seed}:{index}")
        question, answer, params = _GENERATORS[kind](rng, difficulty)
        problems.append(Problem(
            id=f"{kind}-{difficulty}-s{seed}-{index + 1:03d}",
            question=question,
            answer=answer,
            extra={"kind": kind, "difficulty": difficulty, "seed": seed, "params": params},
        ))
    return problems


def parse_gen_spec(spec: str) -> tuple[str, int, str, int]:
    """`gen:KIND:N[:DIFFICULTY][:seed=S]` -> (kind, n, difficulty, seed)."""
    usage = "expected gen:KIND:N[:DIFFICULTY][:seed=S], e.g. gen:linear:10:hard:seed=3"
    parts = spec.split(":")
    if len(parts) < 3 or parts[0] != "gen":
        raise DatasetError(f"{spec!r}: {usage}")
    kind, count = parts[1], parts[2]
    try:
        n = int(count)
    except ValueError:
        raise DatasetError(f"{spec!r}: the count {count!r} is not a whole number; "
                           f"{usage}") from None
    difficulty, seed = "medium", 0
    for part in parts[3:]:
        if part.startswith("seed="):
            try:
                seed = int(part[len("seed="):])
            except ValueError:
                raise DatasetError(f"{spec!r}: {part!r} is not a whole-number seed") from None
        elif part in DIFFICULTIES:
            difficulty = part
        else:
            raise DatasetError(f"{spec!r}: {part!r} is neither a difficulty "
                               f"({', '.join(DIFFICULTIES)}) nor seed=S")
    return kind, n, difficulty, seed
