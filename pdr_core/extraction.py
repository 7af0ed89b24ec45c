"""Final answers in model text: which phrasings count, in which order, and why none was found.

Everything here is pure string work on untrusted model text, so every function must
terminate quickly and never raise on any string: all regexes are written so that they cannot
backtrack catastrophically, and every weaker phrasing reads a bounded window of text.

Precedence (`find_answer`; the first rule that gives a value wins):

1. Explicit markers: `\\boxed{X}` / `\\fbox{X}`, an `Answer: X` line (also `**Answer:**`,
   `Final Answer:`, the value on the next line) and "final answer is X". Among these the
   one that starts last in the text wins, so a corrected answer replaces an earlier one.
2. "the answer is X" (also "So, the answer is: X", "the correct answer is X", "the solution
   to the problem is X"): the last one followed by a value; where its sentence is a chain of
   equalities ("the answer is x = 3*7 + 7 = 28"), the value after the last `=`.
3. A bold value on the last non-empty line: "So she has **14** apples."
4. "= X" on the last non-empty line: "17 * 3 + 1 = 52".

Rules 2 to 4 accept only a value: a number (sign, thousands separators, decimals, a ratio,
`%`, `$`), arithmetic on numbers taken whole (`17 + 1`, never just `17`), a LaTeX expression
without spaces (`\\frac{1}{2}`), a bracketed tuple or choice (`(2, -1)`, `(B)`), or anything
inside `$...$` / `\\(...\\)`; "x =" before it is dropped.
A phrase followed by words gives nothing, and no number is ever guessed from elsewhere in
the text. `no_answer_reason` says why a text gave no answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pdr_core.render.textfmt import terminal_safe

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


def closing_braces(text: str, start: int) -> dict[int, int]:
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


def strip_edges(s: str) -> str:
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
    if not strip_edges(content) and line_end < cap:
        nxt = _NEXT_LINE_RE.match(text, line_end, cap)
        content = nxt.group(1) if nxt else ""
    return content




# --- the explicit markers -------------------------------------------------------------------

_EXPLICIT_RULES = {"box": "boxed", "line": "answer line", "final": "final answer is"}


def _explicit(text: str) -> tuple[str, str] | None:
    """The answer of the latest explicit marker (rule 1) with its rule name, or None."""
    # (start, content start, content end or cap, kind); contents are read lazily, latest
    # first, because slicing every nested box of a huge input would be quadratic.
    candidates: list[tuple[int, int, int, str]] = []
    first = _BOXED_RE.search(text)
    if first is not None:
        pairs = closing_braces(text, first.end() - 1)
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
        cleaned = strip_edges(raw)
        if cleaned:
            return cleaned, _EXPLICIT_RULES[kind]
    return None


# --- weaker phrasings (rules 2 to 4) --------------------------------------------------------

# "So, the answer is 19." / "The correct answer is: $\\frac{1}{2}$" / "the solution to the
# problem is 33".
_ANSWER_IS_RE = re.compile(
    r"\b(?:answer|solution(?:[ \t]+(?:to|of|for)[ \t]+(?:the|this)[ \t]+"
    r"(?:problem|question|equation))?)[ \t]+is\b[ \t]*:?",
    re.IGNORECASE,
)
# How far after a phrase or `=` a value may start and run.
_WINDOW = 160
_MAX_VALUE = 60
_ASSIGNED_RE = re.compile(r"[A-Za-z][ \t]*=(?!=)[ \t]*")
_TUPLE_RE = re.compile(r"[(\[][^()\[\]\n]{1,40}[)\]]")
_CHOICE_RE = re.compile(r"[(\[][A-Za-z][)\]]")
# Arithmetic on numbers, taken whole: "= 17 + 1" is "17 + 1", not "17".
_ARITH_RE = re.compile(r"[-+\u2212]?\(?\d[\d,.]*\)?(?:[ \t]*[-+*/^\u00d7\u00f7\u2212][ \t]*"
                       r"\(?\d[\d,.]*\)?){1,8}")
# A run without spaces that starts like a number or a LaTeX expression.
_COMPACT_RE = re.compile(rf"[-+\u2212]?(?:\\?\$)?[\d.\\][^\s]{{0,{_MAX_VALUE - 1}}}")
_DELIMITERS = (("$$", "$$"), ("\\(", "\\)"), ("\\[", "\\]"), ("$", "$"), ("**", "**"))
_BOLD_RE = re.compile(rf"\*\*([^*\n]{{1,{_MAX_VALUE}}})\*\*")
_TRAILING = ".,;:!?"


def _trim(value: str) -> str:
    for _ in range(3):  # "52$." -> "52": punctuation and delimiters, in either order
        value = strip_edges(value).rstrip(_TRAILING)
    return value


def _is_value(value: str) -> bool:
    return bool(value) and any(c.isdigit() or c == "\\" for c in value) \
        and _BOX_NAME_RE.search(value) is None


def _leading_value(window: str) -> str | None:
    """The value at the start of `window` (after spaces), or None when words come first."""
    window = window.lstrip()
    assigned = _ASSIGNED_RE.match(window)
    if assigned:
        window = window[assigned.end():]
    for opener, closer in _DELIMITERS:
        if window.startswith(opener):
            close = window.find(closer, len(opener))
            if close == -1:
                return None
            inner = window[len(opener):close].strip()
            if opener == "**":  # bold is prose as often as math: its content must be a value
                return inner if _whole_value(inner) else None
            inner = _trim(inner)
            return inner if inner and len(inner) <= _MAX_VALUE and \
                _BOX_NAME_RE.search(inner) is None else None
    match = _TUPLE_RE.match(window) or _ARITH_RE.match(window) or _COMPACT_RE.match(window)
    if match is None:
        return None
    value = _trim(match.group())
    return value if _is_value(value) or _CHOICE_RE.fullmatch(value) else None


def _whole_value(text: str) -> bool:
    """Whether `text` is one value and nothing more ("14", not "Step 1")."""
    value = _leading_value(text)
    return value is not None and _trim(text).endswith(value) and \
        len(_trim(text)) - len(value) <= 4  # room for "x = "


def _after_last_equals(line: str) -> int | None:
    """Where the text after the last plain `=` of `line` starts (not `<=`, `>=`, `==`)."""
    at = line.rfind("=")
    while at != -1 and ((at and line[at - 1] in "<>!=") or line[at + 1: at + 2] == "="):
        at = line.rfind("=", 0, at - 1) if at else -1
    return None if at == -1 else at + 1


def _answer_is(text: str) -> str | None:
    """Rule 2: the last "answer is" followed by a value; in "the answer is x = 3*7 + 7 = 28"
    the value is what follows the sentence's last `=`."""
    for match in reversed(list(_ANSWER_IS_RE.finditer(text))):
        window = text[match.end(): match.end() + _WINDOW].lstrip()
        sentence = window.split("\n", 1)[0]
        end = _SENTENCE_END_RE.search(sentence)
        sentence = sentence[: end.start()] if end else sentence
        equals = _after_last_equals(sentence)
        value = _leading_value(window if equals is None else sentence[equals:])
        if value:
            return value
    return None


def _last_line(text: str) -> str:
    end = len(text)
    while end and (text[end - 1].isspace() or text[end - 1] <= "\x1f"):
        end -= 1
    return text[text.rfind("\n", 0, end) + 1: end]


def _bold_on_last_line(text: str) -> str | None:
    """Rule 3: the last bold value on the last non-empty line."""
    for match in reversed(list(_BOLD_RE.finditer(_last_line(text)))):
        inner = match.group(1).strip()
        if _whole_value(inner):
            return _leading_value(inner)
    return None


def _equals_on_last_line(text: str) -> str | None:
    """Rule 4: what follows the last `=` of the last non-empty line (not `<=`, `==`)."""
    line = _last_line(text)
    start = _after_last_equals(line)
    return None if start is None else _leading_value(line[start: start + _WINDOW])


_WEAK_RULES = (
    ("the answer is", _answer_is),
    ("bold on the last line", _bold_on_last_line),
    ("= on the last line", _equals_on_last_line),
)
RULES: tuple[str, ...] = (*_EXPLICIT_RULES.values(), *(name for name, _ in _WEAK_RULES))


@dataclass(frozen=True)
class Found:
    """An answer and the rule (one of RULES) that gave it; both None when none did."""

    answer: str | None
    rule: str | None


def find_answer(text: str) -> Found:
    """The final answer a model gave in `text` and the rule that found it (see the module
    doc for the precedence). Control characters in the answer are written as visible
    escapes: an answer is printed on terminals."""
    explicit = _explicit(text)
    if explicit is not None:
        return Found(terminal_safe(explicit[0]), explicit[1])
    for name, rule in _WEAK_RULES:
        value = rule(text)
        if value:
            return Found(terminal_safe(value), name)
    return Found(None, None)


def extract_answer(text: str) -> str | None:
    """The final answer a model gave in `text`, or None when it gave none."""
    return find_answer(text).answer


# --- why none -------------------------------------------------------------------------------


def no_answer_reason(text: str, finish_reason: str | None = None) -> str | None:
    """Why `text` gave no answer, in words for the node view; None when it gave one."""
    if find_answer(text).answer is not None:
        return None
    cut = "; the call stopped at its max-tokens limit" if finish_reason == "length" else ""
    if not strip_edges(text):
        return "the output is empty" + cut
    first = _BOXED_RE.search(text)
    if first is not None:
        pairs = closing_braces(text, first.end() - 1)
        if any(m.end() - 1 not in pairs for m in _BOXED_RE.finditer(text, first.start())):
            return "a \\boxed{ is opened but never closed" + (
                cut or " (the output looks cut off)")
        return "every \\boxed{} in it is empty" + cut
    if _ANSWER_LINE_RE.search(text) or _FINAL_IS_RE.search(text):
        return "its \u201cAnswer:\u201d has nothing after it" + cut
    if _ANSWER_IS_RE.search(text):
        return "\u201canswer is\u201d is followed by words, not a value" + cut
    return ("none of the phrasings: \\boxed{}, an \u201cAnswer:\u201d line, \u201cthe "
            "answer is \u2026\u201d, a bold value or \u201c= value\u201d on the last line "
            "(numbers elsewhere in the text are not guessed from)" + cut)
