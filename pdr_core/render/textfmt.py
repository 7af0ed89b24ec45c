"""Model text prepared for where it is shown: a terminal, or a markdown renderer that
understands $...$ math.

A terminal obeys control characters: `terminal_safe` shows them as visible escapes.
A markdown renderer obeys links, images (the browser fetches them: a tracking pixel), bare
URLs (autolinked) and Streamlit's `:color[...]` directives: `inert` shows a short text
literally, and `model_markdown` keeps math and line breaks but defuses those.
Models write LaTeX as \\[...\\], \\(...\\) or a bare \\boxed{...}, and break lines with a
single newline; markdown would show the first as text and join the lines. Fenced code is
left untouched. HTML in the text is not handled here: the renderer must escape it.
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, and C1 controls (U+0080-U+009F: CSI, OSC, ...).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_FENCE = re.compile(r"(```.*?(?:```|\Z))", re.DOTALL)
_DISPLAY = re.compile(r"\\\[(.+?)\\\]", re.DOTALL)
_INLINE = re.compile(r"\\\((.+?)\\\)", re.DOTALL)
_MATH = re.compile(r"\$\$.+?\$\$|\$[^$\n]+?\$", re.DOTALL)
_BOXED = re.compile(r"\\boxed\{")
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation mark
# Outside math and code: link and image brackets, and autolink openers. Bare URLs and
# addresses are autolinked after escapes are read, so a word joiner (invisible) breaks
# their `http://`, `www.` and `@` instead.
_LIVE = re.compile(r"[\[\]<]")
_AUTOLINK = re.compile(r"(?i:(?<=http)(?=s?://)|(?<=www)(?=\.))|(?=@)")
WORD_JOINER = "\u2060"
# Spans a renderer shows as they are. Where these and the renderer disagree, the text is
# escaped (shown with a backslash), never left live: an escaped `$` or backtick opens
# nothing, and a code span closes only on a run of backticks of its own length.
_KEPT = re.compile(r"(?<![\\$])\$\$.+?\$\$|(?<![\\$])\$[^$\n]+?\$"
                   r"|(?<![`\\])(`+)(?!`).+?(?<!`)\1(?!`)", re.DOTALL)


def terminal_safe(text: str) -> str:
    """`text` with every control character but newline and tab written as a visible \\xNN:
    nothing printed can clear the screen, retitle the window, write the clipboard (OSC 52)
    or overwrite a line. Used on everything the command line prints and on answers."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def json_safe(json_text: str) -> str:
    """JSON text with DEL and C1 controls inside its strings written as \\u00NN escapes,
    which parse back to the same characters (json.dumps already escapes C0)."""
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", json_text)


def inert(text: str) -> str:
    """Markdown that shows `text` as it is, on one line: every punctuation mark escaped,
    so nothing in it is a link, an image, emphasis, code, math or a directive."""
    return _PUNCTUATION.sub(r"\\\1", _unlink(" ".join(text.split())))


def model_markdown(text: str) -> str:
    """Markdown for `text`: LaTeX delimiters as $/$$, bare \\boxed in math, line breaks kept."""
    parts = _FENCE.split(text)
    for index in range(0, len(parts), 2):  # even parts are outside code fences
        parts[index] = _prose(parts[index])
    return "".join(parts)


def _prose(text: str) -> str:
    text = _DISPLAY.sub(lambda m: "$$" + m.group(1).strip() + "$$", text)
    text = _INLINE.sub(lambda m: "$" + m.group(1).strip() + "$", text)
    text = _defuse(_wrap_bare_boxed(text))
    # A single newline is a line break in model text, not a space.
    return re.sub(r"(?<!\n)\n(?!\n)", "  \n", text)


def _unlink(text: str) -> str:
    return _AUTOLINK.sub(WORD_JOINER, text)


def _defuse(text: str) -> str:
    """Escape what would make a link or an image, outside math and code spans (which
    show their text as it is, and whose text an escape would change)."""
    out, last = [], 0
    for match in _KEPT.finditer(text):
        start, end = match.span()
        out.append(_unlink(_LIVE.sub(lambda m: "\\" + m.group(), text[last:start])))
        out.append(text[start:end])
        last = end
    out.append(_unlink(_LIVE.sub(lambda m: "\\" + m.group(), text[last:])))
    return "".join(out)


def _wrap_bare_boxed(text: str) -> str:
    """Put $...$ around \\boxed{...} that stands outside any math span."""
    spans = [m.span() for m in _MATH.finditer(text)]
    out, last = [], 0
    for match in _BOXED.finditer(text):
        start = match.start()
        if start < last or any(a <= start < b for a, b in spans):
            continue
        end = _closing_brace(text, match.end())
        if end is None:
            continue
        out.append(text[last:start])
        out.append("$" + text[start : end + 1] + "$")
        last = end + 1
    out.append(text[last:])
    return "".join(out)


def _closing_brace(text: str, position: int) -> int | None:
    depth = 1
    for index in range(position, min(len(text), position + 2000)):
        char = text[index]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index
    return None
