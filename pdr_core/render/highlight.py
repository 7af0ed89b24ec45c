"""Python syntax highlighting for the offline report, with the standard library only.

A program becomes escaped text in which keywords, names of builtins, strings, comments and
numbers are wrapped in `<span class="hl-...">` runs (styled by assets/report.css). Every
character of the program is written exactly once, through the caller's `escape`, so the
markup holds nothing of the program but escaped text. Programs are model output: one that
does not tokenize (a syntax error, an unterminated string, a cut-off answer) is highlighted
up to where tokenizing stopped and written plain from there.
"""

from __future__ import annotations

import builtins
import html
import io
import keyword
import tokenize
from collections.abc import Callable, Iterator

BUILTINS = frozenset(name for name in dir(builtins) if not name.startswith("_"))
# Python 3.12 splits f-strings into these tokens; older versions give one STRING.
_STRING_PARTS = frozenset(getattr(tokenize, name) for name in
                          ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END")
                          if hasattr(tokenize, name))


def token_class(token: tokenize.TokenInfo) -> str | None:
    """The highlight class of one token, or None for text shown plain."""
    kind = token.type
    if kind == tokenize.STRING or kind in _STRING_PARTS:
        return "hl-str"
    if kind == tokenize.COMMENT:
        return "hl-com"
    if kind == tokenize.NUMBER:
        return "hl-num"
    if kind == tokenize.NAME:
        if keyword.iskeyword(token.string):
            return "hl-kw"
        if token.string in BUILTINS:
            return "hl-bi"
    return None


def _line_starts(code: str) -> list[int]:
    """Offset in `code` of each line as the tokenizer reads it (lines split at "\\n")."""
    starts, offset = [], 0
    for line in io.StringIO(code, newline="").readlines():
        starts.append(offset)
        offset += len(line)
    return starts


def _spans(code: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, class) of each classed token, in order, while the tokens can be
    trusted: tokenizing stops quietly at the first error or at a token whose position
    does not hold its text."""
    starts = _line_starts(code)
    tokens = tokenize.generate_tokens(io.StringIO(code, newline="").readline)
    try:
        for token in tokens:
            cls = token_class(token)
            if cls is None:
                continue
            (row, col), (end_row, end_col) = token.start, token.end
            if row > len(starts) or end_row > len(starts):
                return
            start, end = starts[row - 1] + col, starts[end_row - 1] + end_col
            if code[start:end] != token.string:
                return  # e.g. "{{" in an f-string part: positions not to be trusted
            yield start, end, cls
    except (tokenize.TokenError, SyntaxError):
        return


def highlight_python(code: str, escape: Callable[[str], str] = html.escape) -> str:
    """`code` as escaped HTML with highlight spans; joined, its text is `code` itself."""
    parts: list[str] = []
    cursor = 0
    for start, end, cls in _spans(code):
        if start < cursor:
            break
        parts.append(escape(code[cursor:start]))
        parts.append(f'<span class="{cls}">{escape(code[start:end])}</span>')
        cursor = end
    parts.append(escape(code[cursor:]))
    return "".join(parts)
