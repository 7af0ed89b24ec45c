"""Mathematical equivalence of two answers' normal forms, as sympy expressions.

Only short answers that parse as plain math are compared, by a conservative parser with
every size bounded, so the check stays quick on any model output.
"""

from __future__ import annotations

import math
import re

from pdr_core.answer_forms import is_plain_number

# Longer normalised answers are not parsed: a math answer is short, and the bound keeps the
# parse and the symbolic check quick on any model output.
_MAX_MATH_LEN = 160
_MAX_MATH_DIGITS = 30
# A power whose exact value would take more bits than this is not built.
_MAX_POWER_BITS = 10_000
# A symbolic base is raised to at most this power (expanding (x+1)^1000 would be slow).
_MAX_SYMBOLIC_EXPONENT = 64
# Symbolic proof is skipped (the pair counts as unequal) past these sizes.
_MAX_EXPANSION_TERMS = 2_000
_MAX_SIMPLIFY_OPS = 80
_MATH_TOKEN_RE = re.compile(
    r"\d+(?:\.\d*)?|\.\d+"            # numbers
    r"|\\(?:frac|sqrt|pi|cdot|times|div)(?![A-Za-z])"
    r"|[A-Za-z]+"                     # symbols, and the words sqrt and pi
    r"|[-+*/^(){}\[\]]"
    r"|[\u221a\u03c0\u00d7\u00b7]"    # √ π × ·
)
_MATH_CHARS_RE = re.compile(r"^[0-9A-Za-z.\\\-+*/^(){}\[\]\u221a\u03c0\u00d7\u00b7]+$")
_UNICODE_TOKENS = {"\u221a": "sqrt", "\u03c0": "pi", "\u00d7": "*", "\u00b7": "*",
                   "\\sqrt": "sqrt", "\\pi": "pi", "\\cdot": "*", "\\times": "*", "\\div": "/"}
_OPENERS = {"(": ")", "{": "}"}


class _NotMath(ValueError):
    """The answer is not an expression the conservative math parser accepts."""


class _MathParser:
    """Recursive descent over a short LaTeX-ish expression, building a sympy expression.

    Accepts numbers (decimals exactly, as rationals), single-letter symbols, pi, + - * /,
    `\\cdot`, `\\times`, `^`, `\\frac{a}{b}`, `\\sqrt{x}`, `\\sqrt[n]{x}`, `sqrt(x)`, brackets
    and implicit products (`2\\sqrt{3}`, `3x`). Anything else raises _NotMath: an unparsed
    answer is never called equal.
    """

    def __init__(self, text: str, sympy_module):
        self.sp = sympy_module
        if not _MATH_CHARS_RE.match(text):
            raise _NotMath(text)
        tokens = []
        pos = 0
        for m in _MATH_TOKEN_RE.finditer(text):
            if m.start() != pos:
                raise _NotMath(text)  # a character no token covers, such as a lone `\`
            token = m.group()
            tokens.append(_UNICODE_TOKENS.get(token, token))
            pos = m.end()
        if pos != len(text):
            raise _NotMath(text)
        self.tokens = tokens
        self.pos = 0

    def parse(self):
        value = self.expr()
        if self.pos != len(self.tokens):
            raise _NotMath(self.tokens[self.pos])
        return value

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise _NotMath(f"expected {expected or 'more'} at token {self.pos}")
        self.pos += 1
        return token

    def expr(self):
        value = self.term()
        while self.peek() in ("+", "-"):
            sign = self.take()
            right = self.term()
            value = value + right if sign == "+" else value - right
        return value

    def term(self):
        value, bare_number = self.factor()
        while True:
            token = self.peek()
            if token in ("*", "/"):
                self.take()
                right, _ = self.factor()
                value = value * right if token == "*" else value / right
            elif token is not None and self._starts_atom(token):
                if bare_number and token == "\\frac":
                    # `3\frac{1}{2}` may be a mixed number (3.5) or a product (1.5): refuse.
                    raise _NotMath("number before \\frac")
                right, bare_number = self.factor()
                value = value * right
                continue
            else:
                return value
            bare_number = False

    @staticmethod
    def _starts_atom(token: str) -> bool:
        return token[0].isalnum() or token[0] == "." or token in ("(", "{", "\\frac")

    def factor(self):
        """A signed power; also says whether it was a bare number (for mixed numbers)."""
        token = self.peek()
        if token in ("+", "-"):
            self.take()
            value, _ = self.factor()
            return (-value if token == "-" else value), False
        bare_number = token is not None and (token[0].isdigit() or token[0] == ".")
        base = self.atom()
        if self.peek() == "^":
            self.take()
            exponent, _ = self.factor()
            return self.power(base, exponent), False
        return base, bare_number

    def power(self, base, exponent):
        sp = self.sp
        if exponent.is_Rational:
            if base.is_Rational:
                bits = max(abs(base.p).bit_length(), base.q.bit_length())
                if abs(exponent.p) * bits > _MAX_POWER_BITS * exponent.q:
                    raise _NotMath("power too large")
            elif abs(exponent) > _MAX_SYMBOLIC_EXPONENT:
                raise _NotMath("exponent too large")
        elif not exponent.is_symbol:
            raise _NotMath("only numbers and single symbols as exponents")
        return sp.Pow(base, exponent)

    def atom(self):
        sp = self.sp
        token = self.take()
        if token[0].isdigit() or token[0] == ".":
            if len(token) > _MAX_MATH_DIGITS:
                raise _NotMath("number too long")
            return sp.Rational(token.rstrip(".") or "0")
        if token == "pi":
            return sp.pi
        if token == "sqrt":
            index = None
            if self.peek() == "[":
                self.take()
                index = self.expr()
                self.take("]")
                if not (index.is_Integer and 2 <= index <= _MAX_SYMBOLIC_EXPONENT):
                    raise _NotMath("root index")
            radicand = self.argument()
            return sp.sqrt(radicand) if index is None else sp.root(radicand, index)
        if token == "\\frac":
            numerator = self.argument()
            return numerator / self.argument()
        if token.isalpha():
            if len(token) != 1:
                raise _NotMath(f"word {token!r}")  # `cm`, `yes`: not a product of symbols
            return sp.Symbol(token)
        if token in _OPENERS:
            value = self.expr()
            self.take(_OPENERS[token])
            return value
        raise _NotMath(token)

    def argument(self):
        """The argument of \\frac or \\sqrt: a braced group, or one digit or letter."""
        if self.peek() in _OPENERS:
            return self.atom()
        token = self.take()
        if len(token) == 1 and token.isalnum():
            return self.sp.Symbol(token) if token.isalpha() else self.sp.Integer(token)
        raise _NotMath(f"argument {token!r}")


def _split_top_level(s: str) -> list[str]:
    """`s` split at commas outside any bracket."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(s):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(s[start:i])
            start = i + 1
    parts.append(s[start:])
    return parts


def _encloses(s: str) -> bool:
    """Whether the bracket opening `s` is the one closing it: `(1,2)`, not `(1)+(2)`."""
    depth = 0
    for i, c in enumerate(s):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                return i == len(s) - 1
    return False


def _sequence(s: str) -> tuple[str, list[str]] | None:
    """A tuple, interval or list as (its brackets, its elements); None for one value."""
    if len(s) >= 2 and s[0] in "([" and s[-1] in ")]" and _encloses(s):
        parts = _split_top_level(s[1:-1])
        if len(parts) > 1:
            return s[0] + s[-1], parts
    parts = _split_top_level(s)
    return ("", parts) if len(parts) > 1 else None


def _math_value(text: str, sympy_module):
    """A sympy expression for a normalised answer, or None when it is not plain math."""
    try:
        value = _MathParser(text, sympy_module).parse()
    except _NotMath:
        return None
    except (ZeroDivisionError, TypeError, ValueError, sympy_module.SympifyError):
        # sympy refusing an operation on what was parsed: not an answer we can judge.
        return None
    if value.has(sympy_module.zoo, sympy_module.nan, sympy_module.oo):
        return None
    return value


def _expansion_terms(expr) -> int:
    """A rough upper bound on the terms `expand(expr)` produces."""
    terms = 1
    for node in _preorder(expr):
        if node.is_Pow and node.base.is_Add and node.exp.is_Integer:
            k = len(node.base.args)
            terms *= math.comb(abs(int(node.exp)) + k - 1, k - 1)
        elif node.is_Mul:
            for factor in node.args:
                terms *= len(factor.args) if factor.is_Add else 1
        if terms > _MAX_EXPANSION_TERMS:
            break
    return terms


def _preorder(expr):
    stack = [expr]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(node.args)


def _expressions_equal(a, b, sympy_module) -> bool:
    """Symbolically equal; a cheap numeric check first rejects most different pairs."""
    sp = sympy_module
    diff = a - b
    if diff == 0:
        return True
    try:
        # Positive, distinct, non-special values: a non-zero result proves a difference.
        point = {s: sp.Rational(7 + 4 * i, 3 + 2 * i)
                 for i, s in enumerate(sorted(diff.free_symbols, key=str))}
        value = diff.subs(point).evalf(30)
        if value.is_number and value.is_comparable and abs(value) > 1e-15:
            return False
        # Equal at that point. Proving it symbolically can explode ((a+b+c+d)^64 expands
        # to 47,905 terms): past a bound the pair is left unproven, so not equal.
        if _expansion_terms(diff) > _MAX_EXPANSION_TERMS:
            return False
        if sp.expand(diff) == 0:
            return True
        return sp.count_ops(diff) <= _MAX_SIMPLIFY_OPS and sp.simplify(diff) == 0
    except (TypeError, ValueError, ZeroDivisionError, sp.SympifyError,
            sp.PolynomialError):
        return False


def math_equal(na: str, nb: str) -> bool:
    """Whether two different normal forms (pdr_core.answer_forms) are equal as short plain
    math: fractions, roots, pi, + - * / ^, single-letter symbols, tuples and intervals.
    Anything the conservative parser refuses is not equal."""
    if len(na) > _MAX_MATH_LEN or len(nb) > _MAX_MATH_LEN:
        return False
    if is_plain_number(na) and is_plain_number(nb):
        return False  # both canonical numbers already, and they differ
    seq_a, seq_b = _sequence(na), _sequence(nb)
    if seq_a is not None or seq_b is not None:
        # Tuples and intervals: the same brackets, and each element equal in order.
        if seq_a is None or seq_b is None or seq_a[0] != seq_b[0]:
            return False
        if len(seq_a[1]) != len(seq_b[1]):
            return False
        return all(x == y or (bool(x) and bool(y) and math_equal(x, y))
                   for x, y in zip(seq_a[1], seq_b[1], strict=True))
    import sympy  # imported on first use: most answers never need it

    a, b = _math_value(na, sympy), _math_value(nb, sympy)
    if a is None or b is None:
        return False
    return _expressions_equal(a, b, sympy)
