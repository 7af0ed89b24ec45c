"""Final-answer extraction, normalisation, and voting over model outputs.

Everything here is pure string work on untrusted model text, so every function must
terminate quickly and never raise on any string: all regexes are written so that they cannot
backtrack catastrophically, and numeric conversions are capped in size.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fractions import Fraction

# --- extraction -----------------------------------------------------------------------------

# `\boxed{` / `\fbox{`; the brace is the last character of the match.
_BOXED_RE = re.compile(r"\\(?:boxed|fbox)[ \t]*\{")

# A backslash escape (consumed whole, so `\{` and `\}` are not grouping braces) or a brace.
_BRACE_TOKEN_RE = re.compile(r"\\.|[{}]", re.DOTALL)

# `Answer:` lines. Anchored at a line start (after markdown decoration such as `**`, `#`,
# `>`, `-`) so that "let me check my answer: it works" mid-sentence is not taken as one;
# "final answer:" is unambiguous enough to be accepted anywhere.
_ANSWER_LINE_RE = re.compile(
    r"(?:^[ \t>#*_-]*(?:final[ \t]+)?|\bfinal[ \t]+)answer[ \t]*(?:\*\*|__)?[ \t]*[:\uff1a]"
    r"(?:[ \t]*(?:\*\*|__))?",
    re.IGNORECASE | re.MULTILINE,
)

# "The final answer is $42$. I hope it is correct." (the Minerva format) and friends.
_FINAL_IS_RE = re.compile(r"\bfinal[ \t]+answer[ \t]+is\b[ \t]*:?", re.IGNORECASE)

# The line after an `Answer:` that ends its own line: models often put the value below it.
_NEXT_LINE_RE = re.compile(r"(?:[ \t\r]*\n)+[ \t]*([^\n]*)")

_UNESCAPED_DOLLAR_RE = re.compile(r"(?<!\\)\$")
_SENTENCE_END_RE = re.compile(r"\.(?=\s)")


def _closing_braces(text: str, start: int) -> dict[int, int]:
    """Map each `{` at or after `start` to its matching `}`, in one linear pass.

    A brace's match depends only on the text after it, so scanning from the first `\\boxed`
    gives the same pairs as scanning the whole text. Unmatched braces are simply absent.
    """
    pairs: dict[int, int] = {}
    stack: list[int] = []
    for m in _BRACE_TOKEN_RE.finditer(text, start):
        token = m.group()
        if token == "{":
            stack.append(m.start())
        elif token == "}" and stack:
            pairs[stack.pop()] = m.start()
    return pairs


def _strip_edges(s: str) -> str:
    """Strip whitespace, `$`/`\\(`/`\\[` delimiters, `**` and trailing periods at both ends.

    Control characters (NUL and friends) count as whitespace: they are never an answer.
    Works on indices so that pathological input (a megabyte of `*`) stays linear.
    """
    start, end = 0, len(s)
    while start < end:
        if s[start].isspace() or s[start] <= "\x1f" or s[start] == "$":
            start += 1
        elif s.startswith(("**", "\\(", "\\["), start, end):
            start += 2
        else:
            break
    while end > start:
        c = s[end - 1]
        if c.isspace() or c <= "\x1f" or c == ".":
            end -= 1
        elif c == "$" and not (end - 2 >= start and s[end - 2] == "\\"):
            # An escaped `\$` is a literal dollar sign, not a math delimiter.
            end -= 1
        elif s.endswith(("**", "\\)", "\\]"), start, end):
            end -= 2
        else:
            break
    return s[start:end]


def _clip_final_is(content: str) -> str:
    """Cut "final answer is X. I hope it is correct." down to X."""
    for opener, closer in (("$$", "$$"), ("\\(", "\\)"), ("\\[", "\\]"), ("**", "**")):
        if content.startswith(opener):
            close = content.find(closer, len(opener))
            if close != -1:
                return content[: close + len(closer)]
            return content
    if content.startswith("$"):
        m = _UNESCAPED_DOLLAR_RE.search(content, 1)
        return content[: m.end()] if m else content
    m = _SENTENCE_END_RE.search(content)
    return content[: m.start()] if m else content


_BOX_NAME_RE = re.compile(r"\\(?:boxed|fbox)")


def _line_candidates(text: str) -> list[tuple[int, int, int, bool]]:
    """`Answer:` and "final answer is" matches as (start, content start, cap, is-final-is).

    Each content is capped at the next such match, so contents never overlap and reading
    them all stays linear even for a megabyte of "final answer is final answer is ...".
    """
    found = [(m.start(), m.end(), False) for m in _ANSWER_LINE_RE.finditer(text)]
    found += [(m.start(), m.end(), True) for m in _FINAL_IS_RE.finditer(text)]
    found.sort()
    caps = [start for start, _, _ in found[1:]] + [len(text)]
    return [
        (start, end, cap, final)
        for (start, end, final), cap in zip(found, caps[: len(found)], strict=True)
    ]


def _line_content(text: str, pos: int, cap: int, final_is: bool) -> str:
    """The answer text after an `Answer:` / "final answer is" match, at most up to `cap`."""
    line_end = text.find("\n", pos, cap)
    if line_end == -1:
        line_end = cap
    content = text[pos:line_end]
    if final_is:
        return _clip_final_is(content.strip())
    if not _strip_edges(content) and line_end < cap:
        nxt = _NEXT_LINE_RE.match(text, line_end, cap)
        content = nxt.group(1) if nxt else ""
    return content


def extract_answer(text: str) -> str | None:
    """The final answer a model gave in `text`, or None when it gave none.

    Recognises `\\boxed{...}` / `\\fbox{...}` (nested braces allowed), `Answer: ...` lines
    (also `**Answer:**`, `Final Answer:`) and "final answer is ...". The candidate that
    starts last in the text wins. Unclosed and empty boxes are ignored.
    """
    # (start, content start, content end or cap, kind); contents are read lazily, latest
    # first, because slicing every nested box of a huge input would be quadratic.
    candidates: list[tuple[int, int, int, str]] = []
    first = _BOXED_RE.search(text)
    if first is not None:
        pairs = _closing_braces(text, first.end() - 1)
        for m in _BOXED_RE.finditer(text, first.start()):
            close = pairs.get(m.end() - 1)
            if close is not None:
                candidates.append((m.start(), m.end(), close, "box"))
    for start, pos, cap, final_is in _line_candidates(text):
        candidates.append((start, pos, cap, "final" if final_is else "line"))
    candidates.sort(key=lambda c: c[0], reverse=True)

    for _, pos, end, kind in candidates:
        if kind == "box":
            # A box holding another box: the inner one is a candidate of its own, and when
            # it was skipped (empty or unclosed) the outer text is not an answer either.
            if _BOX_NAME_RE.search(text, pos, end):
                continue
            raw = text[pos:end]
        else:
            raw = _line_content(text, pos, end, kind == "final")
            # A line like `Answer: \\boxed{5}` is handled by the box itself; one whose box
            # never closed (a truncated output) holds no usable answer.
            if _BOX_NAME_RE.search(raw):
                continue
        cleaned = _strip_edges(raw)
        if cleaned:
            return cleaned
    return None


# --- normalisation --------------------------------------------------------------------------

# Wrappers whose content is the answer itself; `[^{}]*` keeps each attempt bounded by the
# next brace, so repeated application stays linear.
_TEXT_WRAPPER_RE = re.compile(
    r"\\(?:text|textrm|textbf|textit|texttt|mathrm|mathbf|mathit|mbox|operatorname)"
    r"[ \t]*\{([^{}]*)\}"
)
_OUTER_WRAPPER_RE = re.compile(r"\\(?:boxed|fbox|text|textrm|textbf|mathrm|mathbf|mbox)[ \t]*\{")
_SPACING_RE = re.compile(r"\\[,!;: ]|\\(?:quad|qquad|displaystyle)(?![A-Za-z])")
_LEFT_RIGHT_RE = re.compile(r"\\(?:left|right)(?![A-Za-z])")
_DEGREE_RE = re.compile(r"\^\{?\\circ\}?|\\degree(?![A-Za-z])|\u00b0")
_PERCENT_RE = re.compile(r"\\?%")
_DOLLAR_RE = re.compile(r"\\?\$")
_THOUSANDS_RE = re.compile(r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?![\d,])")
_WHITESPACE_RE = re.compile(r"[\s\x00-\x1f]+")
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
        if _closing_braces(s, m.end() - 1).get(m.end() - 1) != len(s) - 1:
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
    s = _strip_edges(answer.replace("\u2212", "-"))  # Unicode minus, common in model text
    s = _unwrap_outer(s)
    for _ in range(4):  # nested `\text{\textbf{..}}`; bounded
        unwrapped = _TEXT_WRAPPER_RE.sub(r"\1", s)
        if unwrapped == s:
            break
        s = unwrapped
    s = _SPACING_RE.sub("", s)
    s = _DOLLAR_RE.sub("", s)
    # Thousands separators are recognised before spaces go, so `(1, 500)` stays a tuple;
    # bracketed answers are tuples, intervals or sets, never one big number.
    if not s.startswith(("(", "[", "\\{", "\\left")):
        s = _THOUSANDS_RE.sub(lambda m: m.group().replace(",", ""), s)
    s = _WHITESPACE_RE.sub("", s)
    s = _LEFT_RIGHT_RE.sub("", s)
    s = _DEGREE_RE.sub("", s)
    s = _PERCENT_RE.sub("", s)
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


# --- comparison and voting ------------------------------------------------------------------


def answers_equal(a: str | None, b: str | None) -> bool:
    """Whether both answers are present and normalise to the same form."""
    na, nb = normalize_answer(a), normalize_answer(b)
    return na is not None and na == nb


def is_correct(answer: str | None, reference: str | None) -> bool | None:
    """Whether `answer` matches `reference`; None when there is no reference to grade by."""
    if reference is None:
        return None
    if answer is None:
        return False
    return answers_equal(answer, reference)


def answer_clusters(answers: Sequence[str | None]) -> list[tuple[str, list[int]]]:
    """Indices grouped by normalised answer, largest group first.

    Ties go to the group whose first member came earliest. Missing answers (None, or ones
    that normalise to nothing) belong to no group.
    """
    groups: dict[str, list[int]] = {}
    for index, answer in enumerate(answers):
        key = normalize_answer(answer)
        if key is not None:
            groups.setdefault(key, []).append(index)
    return sorted(groups.items(), key=lambda item: (-len(item[1]), item[1][0]))


def majority_vote(answers: Sequence[str | None]) -> tuple[str | None, int]:
    """The most common answer, as its earliest voter wrote it, and how many gave it.

    Ties go to the answer given first; with no answers at all, `(None, 0)`.
    """
    clusters = answer_clusters(answers)
    if not clusters:
        return None, 0
    _, members = clusters[0]
    return answers[members[0]], len(members)
