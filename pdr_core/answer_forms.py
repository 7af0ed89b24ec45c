"""Normal forms of answers: what two answers must share to be the same answer.

Pure string work on untrusted model text: every function terminates quickly and never
raises on any string; the regexes cannot backtrack catastrophically, and numeric
conversions are capped in size.
"""

from __future__ import annotations

import re
from fractions import Fraction

from pdr_core.extraction import closing_braces, strip_edges
from pdr_core.render.textfmt import terminal_safe

# Wrappers whose content is the answer itself; `[^{}]*` keeps each attempt bounded by the
# next brace, so repeated application stays linear.
_TEXT_WRAPPER_RE = re.compile(
    r"\\(?:text|textrm|textbf|textit|texttt|mathrm|mathbf|mathit|mbox|operatorname)"
    r"[ \t]*\{([^{}]*)\}"
)
_OUTER_WRAPPER_RE = re.compile(r"\\(?:boxed|fbox|text|textrm|textbf|mathrm|mathbf|mbox)[ \t]*\{")
# What carries no meaning in an answer, dropped in this order: LaTeX spacing and dollar
# signs before thousands separators are read; whitespace, \left/\right, degrees and
# percent signs after.
_DROPPED_BEFORE_SEPARATORS = tuple(re.compile(pattern) for pattern in (
    r"\\[,!;: ]|\\(?:quad|qquad|displaystyle)(?![A-Za-z])",
    r"\\?\$",
))
_DROPPED_AFTER_SEPARATORS = tuple(re.compile(pattern) for pattern in (
    r"[\s\x00-\x1f]+",
    r"\\(?:left|right)(?![A-Za-z])",
    r"\^\{?\\circ\}?|\\degree(?![A-Za-z])|\u00b0",
    r"\\?%",
))
_THOUSANDS_RE = re.compile(r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?![\d,])")
_ASSIGNMENT_RE = re.compile(r"^(?:[A-Za-z]|\\[A-Za-z]+)(?:_\{?[A-Za-z0-9]+\}?)?=")
_FRAC_NAME_RE = re.compile(r"\\[dt]frac(?![A-Za-z])")
_FRAC_SHORT_RE = re.compile(r"\\frac(\d)(\d)")
_SQRT_SHORT_RE = re.compile(r"\\sqrt([0-9A-Za-z])")
_CHOICE_RE = re.compile(r"^[(\[]([A-Za-z])[)\]]$")

_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
_NUMBER_RE = re.compile(rf"^{_NUM}$")
_SLASH_FRAC_RE = re.compile(rf"^({_NUM})/({_NUM})$")
_LATEX_FRAC_RE = re.compile(rf"^([+-]?)\\frac\{{({_NUM})\}}\{{({_NUM})\}}$")

# Longer numbers are compared as strings: converting them is slow and `int()` refuses
# more than 4300 digits.
_MAX_NUMBER_LEN = 60


def _unwrap_outer(s: str) -> str:
    """Drop `\\boxed{...}` / `\\text{...}` wrapping the whole string (nested braces allowed)."""
    for _ in range(8):  # bounded: each round removes one wrapper
        m = _OUTER_WRAPPER_RE.match(s)
        if m is None or not s.endswith("}"):
            return s
        if closing_braces(s, m.end() - 1).get(m.end() - 1) != len(s) - 1:
            return s  # e.g. `\text{a}+\text{b}`: the first brace closes early
        s = s[m.end() : -1].strip()
    return s


def _format_fraction(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return f"{value.numerator}/{value.denominator}"


def _canonical_number(s: str) -> str | None:
    """`s` as a reduced fraction or integer when it is a plain number or ratio, else None."""
    if len(s) > _MAX_NUMBER_LEN:
        return None
    try:
        if _NUMBER_RE.match(s):
            return _format_fraction(Fraction(s))
        m = _SLASH_FRAC_RE.match(s)
        if m:
            return _format_fraction(Fraction(m.group(1)) / Fraction(m.group(2)))
        m = _LATEX_FRAC_RE.match(s)
        if m:
            value = Fraction(m.group(2)) / Fraction(m.group(3))
            return _format_fraction(-value if m.group(1) == "-" else value)
    except (ValueError, ZeroDivisionError):  # `1/0`, or a form Fraction rejects
        return None
    return None


def normalize_answer(answer: str | None) -> str | None:
    """A canonical form of `answer` for comparison, or None when nothing is left.

    Equal forms mean the same answer: `1,000` == `1000`, `0.5` == `\\frac{1}{2}` == `2/4`,
    `x = 3` == `3`, `50\\%` == `50`, `\\text{Yes}` == `yes`. Unit words are kept.
    """
    if answer is None:
        return None
    # Control characters escaped as extraction writes them, so that a raw reference matches
    # its answer; the Unicode minus is common in model text.
    s = terminal_safe(strip_edges(answer.replace("\u2212", "-")))
    s = _unwrap_outer(s)
    for _ in range(4):  # nested `\text{\textbf{..}}`; bounded
        unwrapped = _TEXT_WRAPPER_RE.sub(r"\1", s)
        if unwrapped == s:
            break
        s = unwrapped
    for dropped in _DROPPED_BEFORE_SEPARATORS:
        s = dropped.sub("", s)
    # Thousands separators are recognised before spaces go, so `(1, 500)` stays a tuple;
    # bracketed answers are tuples, intervals or sets, never one big number.
    if not s.startswith(("(", "[", "\\{", "\\left")):
        s = _THOUSANDS_RE.sub(lambda m: m.group().replace(",", ""), s)
    for dropped in _DROPPED_AFTER_SEPARATORS:
        s = dropped.sub("", s)
    s = s.rstrip(".")
    m = _ASSIGNMENT_RE.match(s)
    if m and s[m.end() :] and "=" not in s[m.end() :]:
        s = s[m.end() :]
    s = _FRAC_NAME_RE.sub(r"\\frac", s)
    s = _FRAC_SHORT_RE.sub(r"\\frac{\1}{\2}", s)
    s = _SQRT_SHORT_RE.sub(r"\\sqrt{\1}", s)
    number = _canonical_number(s)
    if number is not None:
        return number
    choice = _CHOICE_RE.match(s)
    if choice:
        s = choice.group(1)
    if "\\" not in s:
        # Plain text: case carries no meaning (`Yes`/`yes`, `(B)`/`(b)`). LaTeX keeps its
        # case, since `\Delta` and `\delta` differ.
        s = s.lower()
    return s or None


def is_plain_number(s: str) -> bool:
    """Whether a normal form is a plain number or ratio (already canonical, see above)."""
    return bool(_NUMBER_RE.match(s) or _SLASH_FRAC_RE.match(s))
