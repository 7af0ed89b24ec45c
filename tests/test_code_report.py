"""The offline HTML report of a code run: each program's test results, as the run view
shows them (per test passed or failed with its message, the time, the limit hit, stderr),
all of it escaped."""

from __future__ import annotations

import asyncio
import html
import re

from openai_server import OpenAIServer
from test_report import parse

from pdr_core.code.executor import Executor, Limits
from pdr_core.code.problems import load_humaneval
from pdr_core.config import RunConfig
from pdr_core.providers.openai import OpenAIProvider
from pdr_core.render.report import render_report
from pdr_core.run.methods import run
from pdr_core.tasks import ProgramTask
from pdr_core.trace import Trace
from pdr_core.trace_import import trace_from_dict

ZERO = next(p for p in load_humaneval() if p.id == "HumanEval/0")
HOSTILE = "<script>alert('stderr')</script>"
HOSTILE_CODE = "# </pre><script>alert('program')</script>"
PROGRAMS = {
    # Passes 4 of 7, writes hostile text to stderr and holds hostile text in a comment.
    0: ("import sys\ndef has_close_elements(numbers, threshold):\n"
        f"    print({HOSTILE!r}, file=sys.stderr)\n    {HOSTILE_CODE}\n    return True\n"),
    1: "def has_close_elements(numbers, threshold):\n    while True:\n        pass\n",
    2: ZERO.question + ZERO.reference_solution,
}


def code_trace(allowed: bool = True) -> Trace:
    task = ProgramTask(ZERO, Executor(allowed, Limits(wall_seconds=1.5, cpu_seconds=2)))
    def answer(messages, seed):  # seed None: the one-token n-probe
        return f"\n```python\n{PROGRAMS[(seed or 0) % 1000]}```\n"

    with OpenAIServer(answer=answer) as server:
        provider = OpenAIProvider(server.base_url, "sk-x", "fake-model", max_retries=0)
        return asyncio.run(run(ZERO.question, RunConfig(method="vote", width=3), provider,
                               task=task))


def section(page: str, node_id: str) -> str:
    match = re.search(rf'data-node-id="{re.escape(node_id)}"[^>]*>(.*?)</details>\n?'
                      r'(?=<details class="node|</section>)', page, re.DOTALL)
    assert match, node_id
    return match.group(1)


def test_each_program_shows_its_tests_time_limit_and_stderr_escaped():
    trace = code_trace()
    page = render_report(trace)
    wrong, looping, right = (section(page, f"r1-draft-{i}") for i in range(3))
    assert "status failed · 4 of 7 tests passed" in wrong
    assert wrong.count("✗ failed") == 3 and wrong.count("✓ passed") == 4
    assert html.escape("AssertionError (the candidate gave True)") in wrong
    assert "<summary>stderr</summary>" in wrong and html.escape(HOSTILE) in wrong
    assert "limit hit: wall clock 1.5s" in looping and "status timeout" in looping
    assert "status passed · 7 of 7 tests passed" in right
    assert re.search(r"7 of 7 tests passed · \d+\.\d\d s", right)
    assert "Contained by: resource limits" in right
    # The summary line says what the tests said, not the program's first characters.
    assert "answer <bdi>program passing 4 of 7 tests</bdi>" in page
    outside_scripts = re.sub(r"<script\b[^>]*>.*?</script>", "", page, flags=re.DOTALL)
    assert "<script>alert" not in outside_scripts


def test_a_hostile_imported_record_stays_text():
    data = code_trace().to_dict()
    node = next(n for n in data["nodes"] if n["id"] == "r1-draft-0")
    node["tests"].update(status="<b>odd</b>", limit="<i>x</i>", seconds="soon",
                         error="<img src=x onerror=alert(1)>")
    node["tests"]["tests"][0].update(name="<iframe>", error="<script>alert(2)</script>")
    node["tests"]["tests"].append("not a test")
    page = render_report(trace_from_dict(data))
    part = section(page, "r1-draft-0")
    for raw in ("<b>odd", "<i>x", "<img", "<iframe", "<script>alert(2)"):
        assert raw not in part, raw
    assert "&lt;iframe&gt;" in part and "&lt;img src=x onerror=alert(1)&gt;" in part
    assert all(not name.startswith("on") for _, attrs in parse(page).tags for name in attrs)


def test_with_execution_off_the_report_says_why_nothing_ran():
    page = render_report(code_trace(allowed=False))
    part = section(page, "r1-draft-2")
    assert "Not run: code execution is off" in part and "correct is unknown" in part
    assert "tests passed" not in part


def test_programs_are_highlighted_and_their_text_stays_inert():
    trace = code_trace()
    page = render_report(trace)
    wrong = section(page, "r1-draft-0")
    program = re.search(r'<pre class="text code"[^>]*>(.*?)</pre>', wrong, re.DOTALL)
    assert program, "the program is not shown as code"
    assert '<span class="hl-kw">def</span>' in program.group(1)
    assert '<span class="hl-bi">print</span>' in program.group(1)
    assert f'<span class="hl-com">{html.escape(HOSTILE_CODE)}</span>' in program.group(1)
    tested = next(n for n in trace.nodes if n.id == "r1-draft-0").answer
    assert tested.endswith(PROGRAMS[0])  # the prompt's signature, then the model's code
    assert html.unescape(re.sub(r"</?span[^>]*>", "", program.group(1))) == tested
    # The header shows the final program highlighted, not as one long inline answer.
    header = page[page.index('<header id="overview">'):page.index("</header>")]
    final = re.search(r'id="final-program">Final program</h3><pre class="text code"[^>]*>'
                      r"(.*?)</pre>", header, re.DOTALL)
    assert final and '<span class="hl-kw">' in final.group(1)
    assert html.unescape(re.sub(r"</?span[^>]*>", "", final.group(1))) == trace.final_answer
    assert "<script>alert('program')" not in page


WRONG = ("def has_close_elements(numbers, threshold):\n"
         "    return True  # </pre><script>alert('diff')</script>\n")
FIXED = ("def has_close_elements(numbers, threshold):\n    s = sorted(numbers)\n"
         "    return any(b - a < threshold for a, b in zip(s, s[1:]))\n")


def test_a_refined_program_shows_a_line_diff_against_the_one_before():
    task = ProgramTask(ZERO, Executor(True, Limits(wall_seconds=5)))

    def answer(messages, seed):  # the fix once a prompt shows a failed test
        user = "\n".join(str(m.get("content")) for m in messages if m["role"] == "user")
        return f"\n```python\n{FIXED if 'failed `assert' in user else WRONG}```\n"

    with OpenAIServer(answer=answer) as server:
        provider = OpenAIProvider(server.base_url, "sk-x", "fake-model", max_retries=0)
        trace = asyncio.run(run(ZERO.question, RunConfig(method="sr", depth=2, sr_feedback=True,
                                                         workspace_tokens=1_000),
                                provider, task=task))
    assert trace.correct is True
    final = section(render_report(trace), "r2-final-0")
    match = re.search(r'<pre class="text code line-diff"[^>]*>(.*?)</pre>', final, re.DOTALL)
    assert match, "the two programs are not diffed line by line"
    lines = match.group(1).split("\n")
    removed = [line for line in lines if line.startswith('<span class="ld-del">')]
    added = [line for line in lines if line.startswith('<span class="ld-add">')]
    assert removed == [f'<span class="ld-del">{html.escape("-" + WRONG.splitlines()[1])}</span>']
    assert len(added) == 2 and "+    s = sorted(numbers)" in html.unescape(added[0])
    assert "+2 −1 lines" in final
    assert "<script>alert('diff')" not in final
