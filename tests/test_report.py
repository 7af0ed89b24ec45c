"""The standalone HTML report: self-contained, complete, and inert whatever the model wrote."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import run_fake
from plotly.offline import get_plotlyjs

from pdr_core.config import RunConfig
from pdr_core.render.report import render_report, visible, write_report
from pdr_core.store import Store
from pdr_core.testing import FakeProvider
from pdr_core.trace import Trace
from pdr_core.trace_import import trace_from_dict

ROOT = Path(__file__).resolve().parent.parent
LONG_LINE = "x" * 50_000
HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">click</a>',
    "</pre></details><iframe src=//evil.example></iframe>",
    "abc \u202eevil\u202c def",
    "nul\x00byte",
    "line\u2028sep",
    LONG_LINE,
]
HOSTILE_TEXT = "\n".join(HOSTILE)


def failing_draft(messages, seed):
    """The second round-1 draft fails: an error message that is itself hostile."""
    return "upstream said <script>alert('err')</script>" if seed == 1 else None


def hostile_trace() -> Trace:
    """A finished PDR run (one failed draft) whose texts, messages, question and an id are
    hostile; built through the JSON form, as an imported trace would be."""
    trace = run_fake(RunConfig(method="pdr", depth=3, width_schedule=(3, 2, 1)),
                     FakeProvider(fail=failing_draft))
    data = trace.to_dict()
    data["question"] += " <script>alert('q')</script>"
    renamed = "r1-draft-0<img src=x onerror=alert(2)>"
    for node in data["nodes"]:
        node["parent_ids"] = [renamed if p == "r1-draft-0" else p for p in node["parent_ids"]]
        if node["id"] == "r1-draft-0":
            node["id"] = renamed
            node["text"] = f"Drafting.\n{HOSTILE_TEXT}\nThe answer is \\boxed{{52}}."
            node["answer"] = "<b>52</b>"
            node["reasoning"] = "thinking <script>alert('r')</script>"
            node["messages"][-1]["content"] += "\n" + HOSTILE_TEXT
        if node["stage"] == "final":
            node["text"] += "\n\u202eright-to-left override"
    return trace_from_dict(data)


@pytest.fixture(scope="module")
def trace() -> Trace:
    return hostile_trace()


@pytest.fixture(scope="module")
def page(trace) -> str:
    return render_report(trace)


class Tags(HTMLParser):
    """Tags, attributes and text of a page; where bidi overrides sit in the text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.stack: list[str] = []
        self.text: list[str] = []
        self.bidi_outside: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in ("meta", "input", "br", "hr", "img", "link"):
            classes = (dict(attrs).get("class") or "").split()
            self.stack.append(".".join([tag, *classes]))

    def handle_endtag(self, tag):
        names = [entry.split(".")[0] for entry in self.stack]
        if tag in names:
            del self.stack[len(names) - 1 - names[::-1].index(tag):]

    def handle_data(self, data):
        if self.stack and self.stack[-1].startswith("script"):
            return
        self.text.append(data)
        # Elements the page's style sheet isolates (pre, bdi, the diff and its ins/del).
        isolating = {"bdi", "ins", "del", "div.pdr-diff"}
        if "\u202e" in data and not any(entry.startswith("pre.") or entry in isolating
                                         for entry in self.stack):
            self.bidi_outside.append(data[:80])


def parse(page: str) -> Tags:
    parser = Tags()
    parser.feed(page)
    parser.close()
    return parser


def data_block(page: str, element_id: str) -> str:
    match = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>',
                      page, re.DOTALL)
    assert match, element_id
    return match.group(1)


def test_no_external_references(page):
    lowered = page.lower()
    assert "<link" not in lowered and "@import" not in lowered
    assert not re.search(r"<script[^>]*\ssrc\s*=", lowered)
    assert not re.search(r"url\(\s*['\"]?\s*(https?:)?//", lowered)
    assert not re.search(r"<(img|iframe|video|audio|source|embed|object)\b", lowered)
    for tag, attrs in parse(page).tags:
        for name in ("src", "href", "action", "srcset", "poster", "data"):
            value = (attrs.get(name) or "").strip().lower()
            assert not value.startswith(("http:", "https:", "//", "javascript:")), (tag, attrs)


def test_plotly_is_inline_and_scripts_are_known(page):
    assert get_plotlyjs() in page
    scripts = [attrs for tag, attrs in parse(page).tags if tag == "script"]
    data = [a for a in scripts if a.get("type") == "application/json"]
    assert {a["id"] for a in data} == {"pdr-trace", "pdr-figures", "pdr-replay"}
    assert all(set(a) == {"type", "id"} for a in data)
    assert sum(1 for a in scripts if not a) == 3  # PlotlyConfig, plotly.js, the page script


def test_every_node_its_text_messages_and_figures(trace, page):
    assert trace.status == "completed"
    for node in trace.nodes:
        assert f'data-node-id="{html.escape(node.id)}"' in page
        assert html.escape(visible(node.text)) in page
        for message in node.messages:
            assert html.escape(visible(message["content"])) in page
    figures = json.loads(data_block(page, "pdr-figures"))
    assert set(figures) == {"tree", "flow", "timeline"}
    ids = {i for t in figures["tree"]["data"] for i in (t.get("customdata") or [])}
    assert ids == {n.id for n in trace.nodes}
    for label in ("B_seq", "B_total", "width_schedule", "workspace_tokens", "base_url"):
        assert label in page
    # The diff of the final against its predecessor, and of a workspace against the next.
    assert "Changes from" in page and "Changes to the next workspace" in page


def test_embedded_trace_round_trips_exactly(trace, page):
    block = data_block(page, "pdr-trace")
    for raw in ("<", ">", "&", "\u2028", "\u2029", "\x00"):
        assert raw not in block
    assert json.loads(block) == json.loads(trace.to_json())
    replay = json.loads(data_block(page, "pdr-replay"))
    starts = [item["start"] for item in replay["nodes"]]
    assert starts == sorted(starts) and len(starts) == len(trace.nodes)


def test_hostile_text_is_escaped_never_live(trace, page):
    outside_scripts = re.sub(r"<script\b[^>]*>.*?</script>", "", page, flags=re.DOTALL)
    lowered = outside_scripts.lower()
    for live in ("<script>alert", "<img", "<iframe", "<b>52", 'href="javascript:'):
        assert live not in lowered, live
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;a href=&quot;javascript:alert(1)&quot;&gt;click&lt;/a&gt;" in page
    parsed = parse(page)
    assert all(not name.startswith("on") for _, attrs in parsed.tags for name in attrs)
    text = "".join(parsed.text)
    for hostile in HOSTILE:
        assert visible(hostile) in text  # the reader sees it literally
    # NUL shows as a symbol; bidi overrides stay inside isolating elements.
    assert "\x00" not in page and "nul\u2400byte" in text
    assert "\u202e" in text and parsed.bidi_outside == []
    assert "overflow-wrap: anywhere" in page
    assert "pre, bdi, .pdr-diff, .pdr-diff ins, .pdr-diff del { unicode-bidi: isolate; }" in page
    assert all('dir="auto"' in tag for tag in re.findall(r"<pre [^>]*>", page))
    assert LONG_LINE in page


def test_failed_node_shows_its_error(trace, page):
    failed = [n for n in trace.nodes if n.status == "failed"]
    assert len(failed) == 1 and failed[0].error
    section = re.search(rf'<details class="node[^"]*" id="n\d+" '
                        rf'data-node-id="{re.escape(html.escape(failed[0].id))}" open>'
                        r"(.*?)</details>\n?(?=<details class=\"node|</section>)", page, re.DOTALL)
    assert section, "the failed node's section is open"
    assert 'class="error"' in section.group(1)
    assert html.escape(failed[0].error) in section.group(1)
    assert "&lt;script&gt;alert(&#x27;err&#x27;)" in section.group(1)


def test_lone_surrogates_are_written_and_round_trip(tmp_path):
    # Imports refuse such text; a Trace built in code can still hold it.
    trace = run_fake(RunConfig(method="single"))
    trace.nodes[0].text = "broken \ud800 pair <b>"
    page = write_report(trace, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "broken \ufffd pair &lt;b&gt;" in page
    assert json.loads(data_block(page, "pdr-trace"))["nodes"][0]["text"] == trace.nodes[0].text


def test_running_trace_and_empty_trace_render(tmp_path):
    trace = run_fake(RunConfig(method="single"))
    data = trace.to_dict()
    data["status"] = "running"
    data["nodes"][0].update(status="running", finished_at=None)
    running = trace_from_dict(data)
    assert "running" in render_report(running)
    empty = trace_from_dict({**data, "nodes": [], "status": "failed", "error": "no <calls>"})
    page = render_report(empty)
    assert "no &lt;calls&gt;" in page
    assert json.loads(data_block(page, "pdr-replay"))["nodes"] == []
    out = write_report(empty, tmp_path / "empty.html")
    assert out.read_text(encoding="utf-8") == page


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PDR_"))}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "pdr_core", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=120)


def test_export_html_from_the_command_line(tmp_path):
    db = tmp_path / "runs.sqlite"
    trace = run_fake(RunConfig(method="pdr", width=3, depth=2), sink=Store(db).writer())
    out = tmp_path / "report.html"
    result = cli("export", trace.id[:8], "--format", "html", "--out", str(out), "--db", str(db),
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and str(out) in result.stderr
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and get_plotlyjs() in page
    assert json.loads(data_block(page, "pdr-trace")) == json.loads(trace.to_json())

    default = cli("export", trace.id, "--format", "html", "--db", str(db), cwd=tmp_path)
    assert default.returncode == 0, default.stderr
    assert (tmp_path / f"{trace.id}.html").is_file() and f"{trace.id}.html" in default.stderr

    as_json = cli("export", trace.id, "--db", str(db), cwd=tmp_path)
    assert as_json.returncode == 0 and json.loads(as_json.stdout)["id"] == trace.id
