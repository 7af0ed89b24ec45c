"""Python highlighting for the offline report: the right runs get the right classes, every
character of the program comes back as escaped text, and a program that does not tokenize
still comes back whole."""

from __future__ import annotations

import html
import re

import pytest
from test_report import parse

from pdr_core.code.problems import load_humaneval
from pdr_core.render.highlight import highlight_python

SPAN_RE = re.compile(r'<span class="(hl-[a-z]+)">(.*?)</span>', re.DOTALL)
BROKEN = [
    "def f(:\n    return 'unterminated",  # a syntax error, then an open string
    'x = """never closed\n<script>alert(1)</script>\n',  # EOF in a multi-line string
    "if x:\n        a = 1\n    b = len(a)\n",  # a dedent to no outer level
    "def f():\n    return (1,\n",  # cut off mid-statement, as a max-tokens stop leaves it
    "a\rb = 'x'\r\nc = 2\x00\n",  # a lone carriage return, CRLF and a NUL
    "\ufeffprint('bom')\n\u202eelse = 1\n",  # a byte-order mark and a bidi override
    "",
]


def text_of(fragment: str) -> str:
    return html.unescape(re.sub(r"</?span[^>]*>", "", fragment))


def runs(fragment: str) -> list[tuple[str, str]]:
    return [(cls, html.unescape(text)) for cls, text in SPAN_RE.findall(fragment)]


def test_each_kind_of_token_gets_its_class():
    code = ("def f(xs):  # sum it\n    total = sum(xs) + 0x1F + 2.5e3\n"
            "    return total if xs else None, 'done', f'{total!r}'\n")
    got = runs(highlight_python(code))
    assert ("hl-kw", "def") in got and ("hl-kw", "return") in got and ("hl-kw", "None") in got
    assert ("hl-com", "# sum it") in got
    assert ("hl-bi", "sum") in got
    assert ("hl-num", "0x1F") in got and ("hl-num", "2.5e3") in got
    assert ("hl-str", "'done'") in got
    assert any(cls == "hl-str" and text.startswith("f'") for cls, text in got)
    # Names that are neither keywords nor builtins stay plain.
    assert not any(text in ("f", "xs", "total") for _, text in got)


def test_hostile_program_text_stays_escaped():
    code = ('s = "</pre><script>alert(1)</script>"  # </pre><img src=x onerror=alert(2)>\n'
            "<iframe src=javascript:alert(3)>\n")
    out = highlight_python(code)
    assert "<script" not in out and "<img" not in out and "<iframe" not in out
    assert {tag for tag, _ in parse(out).tags} <= {"span"}
    assert text_of(out) == code


@pytest.mark.parametrize("code", BROKEN)
def test_a_program_that_does_not_tokenize_comes_back_whole(code):
    out = highlight_python(code)
    assert text_of(out) == code
    assert "<script" not in out


def test_a_broken_program_is_highlighted_up_to_where_it_breaks():
    out = highlight_python('def f():\n    return len(x)\ns = """open\nwhile True: pass\n')
    got = runs(out)
    assert ("hl-kw", "def") in got and ("hl-bi", "len") in got
    assert ("hl-kw", "while") not in got  # inside the unterminated string: plain


def test_every_humaneval_solution_round_trips():
    for problem in load_humaneval():
        code = problem.question + (problem.reference_solution or "")
        out = highlight_python(code)
        assert text_of(out) == code, problem.id
        assert ("hl-kw", "def") in runs(out), problem.id


def test_the_callers_escape_writes_every_piece():
    out = highlight_python("x = 1  # a\x01b\n", escape=lambda s: html.escape(s.upper()))
    assert out == 'X = <span class="hl-num">1</span>  <span class="hl-com"># A\x01B</span>\n'
