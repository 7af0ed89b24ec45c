"""A standalone HTML report of one run: one file that opens offline, with no server.

It holds the run's header, the tree, answer-flow and timeline figures (plotly.js inline),
the budget table, a section per node (messages, output, diffs) and a replay of the run as
it happened. Model and trace text is hostile by default: it enters the HTML only through
`html.escape`, enters `<script>` only as escaped JSON data blocks, and the page's script
writes it with `textContent` only.
"""

from __future__ import annotations

import html
import json
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from plotly.offline import get_plotlyjs

from pdr_core.render.budget_view import COLUMNS, budget_rows
from pdr_core.render.diffs import (
    diff_html,
    is_program,
    line_diff,
    next_workspace,
    predecessor,
    predecessor_title,
)
from pdr_core.render.flow import answer_flow_figure
from pdr_core.render.graph import build_graph, column_of
from pdr_core.render.highlight import highlight_python
from pdr_core.render.replay import node_spans, parse_stamp
from pdr_core.render.timeline import timeline_figure
from pdr_core.render.tree import tree_figure
from pdr_core.run.workspace import workspace_summary
from pdr_core.tasks import answer_text
from pdr_core.trace import Node, Trace, gives_answer

# C0 controls (NUL shows as U+2400 "␀") and DEL become their visible Unicode pictures;
# tab, newline and carriage return stay. Lone surrogates cannot be written as UTF-8.
_VISIBLE = {c: 0x2400 + c for c in range(32) if c not in (9, 10, 13)}
_VISIBLE[0x7F] = 0x2421
_VISIBLE.update({c: 0xFFFD for c in range(0xD800, 0xE000)})

CONFIG_KEYS = ("method", "width_schedule", "depth", "distill", "k", "max_tokens",
               "workspace_tokens", "distill_max_tokens", "total_budget", "temperature", "seed",
               "model", "base_url")
SPEEDS = (1, 2, 5, 10, 20)
SUMMARY_ANSWER_CHARS = 40


def visible(text: str) -> str:
    """`text` with control characters shown as symbols (NUL as ␀), ready to escape."""
    return text.translate(_VISIBLE)


def _e(value: object) -> str:
    """Escaped, visible text of any value; None as an en dash."""
    return "–" if value is None else html.escape(visible(str(value)))


def _short(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def script_json(json_text: str) -> str:
    """JSON text made safe inside `<script>`: no `<`, `>`, `&` or line separators raw.

    Valid JSON has these characters only inside strings, where the escapes mean the same.
    A lone surrogate (which UTF-8 cannot hold) becomes its JSON escape `\\udXXX` too.
    """
    safe = (json_text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
    return safe.encode("utf-8", "backslashreplace").decode("utf-8")


def _data_block(element_id: str, json_text: str) -> str:
    return f'<script type="application/json" id="{element_id}">{script_json(json_text)}</script>'


def _asset(name: str) -> str:
    """A file of the report's page (HTML skeleton, style sheet, script), shipped as package
    data beside this module."""
    return resources.files("pdr_core.render").joinpath("assets", name).read_text("utf-8")


def _duration(node: Node) -> float | None:
    start, end = parse_stamp(node.started_at), parse_stamp(node.finished_at)
    return (end - start).total_seconds() if start and end else None


def _verdict(correct: bool | None) -> str:
    return {True: '<span class="ok">✓ correct</span>',
            False: '<span class="bad">✗ incorrect</span>'}.get(correct, "–")


def _kv(rows: list[tuple[str, str]]) -> str:
    """A key/value grid; values are HTML the caller has already escaped."""
    items = "".join(f"<div><dt>{html.escape(k)}</dt><dd>{v}</dd></div>" for k, v in rows)
    return f'<dl class="kv">{items}</dl>'


def _pre(text: str, cls: str = "text") -> str:
    return f'<pre class="{cls}" dir="auto">{_e(text)}</pre>'


def _program(code: str) -> str:
    """A program, syntax-highlighted; each piece of its text escaped as `_e` does."""
    return f'<pre class="text code" dir="ltr">{highlight_python(code, _e)}</pre>'


# --- sections -------------------------------------------------------------------------------


def _header(trace: Trace) -> str:
    config, budget = trace.config, trace.budget
    start, end = parse_stamp(trace.created_at), parse_stamp(trace.finished_at)
    program = trace.task is not None and trace.final_answer is not None
    run_rows = [
        ("Status", f'<span class="badge st-{_e(trace.status)}">{_e(trace.status)}</span>'),
        ("Final answer", '<a href="#final-program">the program below</a>' if program
         else f"<bdi>{_e(trace.final_answer)}</bdi>"),
        ("Correct", _verdict(trace.correct)),
        ("Reference answer", f"<bdi>{_e(trace.reference_answer)}</bdi>"),
        ("B_seq", f"{budget.b_seq:,} tokens"),
        ("B_total", f"{budget.b_total:,} tokens"),
        ("Calls", str(budget.calls)),
        ("Created", _e(trace.created_at)),
        ("Finished", _e(trace.finished_at)),
        ("Wall time", f"{(end - start).total_seconds():.2f} s" if start and end else "–"),
    ]
    if trace.stop_reason:
        run_rows.append(("Stopped", _e(trace.stop_reason)))
    if trace.name or trace.tags:
        run_rows[:0] = [("Name", f"<bdi>{_e(trace.name)}</bdi>"),
                        ("Tags", _e(", ".join(trace.tags) or None))]
    config_rows = []
    for key in CONFIG_KEYS:
        value = config.get(key)
        if key == "width_schedule" and isinstance(value, list):
            value = ",".join(str(w) for w in value)
        config_rows.append((key, f"<bdi>{_e(value if value != '' else None)}</bdi>"))
    extras = []
    for key, value in config.items():
        if key in CONFIG_KEYS:
            continue
        if isinstance(value, dict | list):
            extras.append(f"<details><summary>{_e(key)}</summary>"
                          f"{_pre(json.dumps(value, indent=2, ensure_ascii=False))}</details>")
        else:
            config_rows.append((str(key), f"<bdi>{_e(value)}</bdi>"))
    error = (f'<div class="error"><strong>Run error</strong>{_pre(trace.error)}</div>'
             if trace.error else "")
    return (
        f'<header id="overview"><h1>PDR run <bdi>{_e(trace.id)}</bdi></h1>'
        f"<h3>Question</h3>{_pre(trace.question, 'text question')}{error}"
        f'<div class="cols"><section><h3>Result</h3>{_kv(run_rows)}</section>'
        f"<section><h3>Configuration</h3>{_kv(config_rows)}{''.join(extras)}</section></div>"
        + (f'<h3 id="final-program">Final program</h3>{_program(trace.final_answer)}'
           if program else "")
        + "</header>"
    )


def _budget_table(trace: Trace) -> str:
    head = "".join(f"<th>{_e(title)}</th>" for title in COLUMNS.values())
    body = "".join("<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in row.values()) + "</tr>"
                   for row in budget_rows(trace))
    return f'<table class="budget"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _link(node_id: str, index: dict[str, int]) -> str:
    where = index.get(node_id)
    return (f'<a href="#n{where}"><bdi>{_e(node_id)}</bdi></a>' if where is not None
            else f"<bdi>{_e(node_id)}</bdi>")


def _node_rows(node: Node, index: dict[str, int]) -> list[tuple[str, str]]:
    """The key/value grid of one node: identity, status, answer, tokens and times."""
    seconds = _duration(node)
    usage = node.usage
    tokens = (f"{node.tokens:,} (prompt {int(usage.get('prompt_tokens', 0)):,}, "
              f"completion {int(usage.get('completion_tokens', 0)):,})")
    extra_usage = {k: v for k, v in usage.items()
                   if k not in ("prompt_tokens", "completion_tokens")}
    if extra_usage:
        tokens += " · " + _e(", ".join(f"{k}: {v}" for k, v in extra_usage.items()))
    rows = [
        ("Id", f"<bdi>{_e(node.id)}</bdi>"),
        ("Stage", _e(node.stage) + ("" if node.call else " (extractive, no model call)")),
        ("Round · branch", f"{node.round} · {node.branch}"),
        ("Parents", ", ".join(_link(p, index) for p in node.parent_ids)
         or "– (sees the question)"),
        ("Status", f'<span class="badge st-{_e(node.status)}">{_e(node.status)}</span>'
                   + (f" (finish: {_e(node.finish_reason)})" if node.finish_reason else "")),
        ("Answer", f"<bdi>{_e(node.answer)}</bdi>" if gives_answer(node.stage)
         else "– (workspace)"),
        ("Correct", _verdict(node.correct)),
        ("Tokens", tokens),
        ("Started", _e(node.started_at)),
        ("Finished", _e(node.finished_at)),
        ("Duration", f"{seconds:.2f} s" if seconds is not None else "–"),
    ]
    if node.stage == "distill":
        rows.append(("Workspace", _e(workspace_summary(node))))
    return rows


def _test_rows(results: list[dict[str, Any]]) -> str:
    head = "<tr><th>#</th><th>Result</th><th>Test</th><th>Message</th></tr>"
    rows = "".join(
        f'<tr class="{"ok" if t.get("passed") is True else "bad"}"><td>{i + 1}</td>'
        f'<td>{"✓ passed" if t.get("passed") is True else "✗ failed"}</td>'
        f"<td>{_pre(str(t.get('name') or ''), 'cell')}</td>"
        f"<td>{_pre(str(t.get('error') or ''), 'cell')}</td></tr>"
        for i, t in enumerate(results))
    return f'<table class="tests"><thead>{head}</thead><tbody>{rows}</tbody></table>'


def _tests_html(node: Node) -> str:
    """A code node's program and test results, as the run view shows them: per test passed
    or failed with its message, the time, the limit hit, stderr. The record may come from
    an imported trace: every value is escaped, whatever its type."""
    tests = node.tests
    if not isinstance(tests, dict):
        return ""
    parts = ['<div class="tests-block">']
    if node.answer is not None:
        parts.append("<h4>Program (as tested: the code taken from the output, with the "
                     f"problem's signature)</h4>{_program(node.answer)}")
    status = str(tests.get("status", ""))
    if status == "disabled":
        why = tests.get("error") or "code execution is off"
        parts.append(f'<p class="muted">Not run: {_e(why)}. Whether this program is correct '
                     "is unknown.</p></div>")
        return "".join(parts)
    raw = tests.get("tests")
    results = [t for t in raw if isinstance(t, dict)] if isinstance(raw, list) else []
    passed = sum(1 for t in results if t.get("passed") is True)
    facts = [f"status {status}", f"{passed} of {len(results)} tests passed"]
    seconds = tests.get("seconds")
    if isinstance(seconds, int | float) and not isinstance(seconds, bool):
        facts.append(f"{seconds:.2f} s")
    if tests.get("limit"):
        facts.append(f"limit hit: {tests['limit']}")
    parts.append(f'<h4>Tests</h4><p class="test-facts">{_e(" · ".join(facts))}</p>')
    if tests.get("error") and status not in ("passed", "failed"):
        parts.append(f'<div class="error"><strong>{_e(status)}</strong>'
                     f"{_pre(str(tests['error']))}</div>")
    if results:
        parts.append(_test_rows(results))
    if tests.get("stderr"):
        parts.append(f"<details><summary>stderr</summary>{_pre(str(tests['stderr']))}"
                     "</details>")
    if tests.get("isolation"):
        parts.append(f'<p class="muted">Contained by: {_e(tests["isolation"])}</p>')
    return "".join(parts) + "</div>"


def _line_diff_html(old: str, new: str) -> str:
    """Two programs line by line, as the run view shows them: added and removed lines
    marked, every line escaped."""
    lines, added, removed = line_diff(old, new)
    if not lines:
        return '<p class="muted">(the same program)</p>'
    marks = {"+": "ld-add", "-": "ld-del", "@": "ld-hunk"}
    body = "\n".join(f'<span class="{marks.get(line[:1], "ld-ctx")}">{_e(line)}</span>'
                     for line in lines)
    return (f'<p class="muted">+{added} −{removed} lines</p>'
            f'<pre class="text code line-diff" dir="ltr">{body}</pre>')


def _node_body(trace: Trace, node: Node, index: dict[str, int]) -> list[str]:
    """The body of one node's section: its grid, error, output, reasoning, diffs, messages."""
    parts = [_kv(_node_rows(node, index))]
    if node.status == "failed" or node.error:
        kind = f" ({_e(node.error_kind)})" if node.error_kind else ""
        parts.append(f'<div class="error"><strong>Error{kind}</strong>{_pre(node.error or "")}'
                     "</div>")
    label = "Partial output before the failure" if node.status == "failed" else "Output"
    parts.append(f"<h4>{label}</h4>"
                 + (_pre(node.text, "text output") if node.text else '<p class="muted">(none)</p>'))
    parts.append(_tests_html(node))
    if node.reasoning:
        parts.append(f"<details><summary>Reasoning ({len(node.reasoning):,} characters)</summary>"
                     f"{_pre(node.reasoning)}</details>")
    before = predecessor(trace, node.id)
    relation = before and predecessor_title(trace, node.id, before)
    for other_id, title in ((before, f"Changes from {{}} ({relation})"),
                            (next_workspace(trace, node.id), "Changes to the next workspace {}")):
        if other_id is not None:
            other = trace.nodes[index[other_id]]
            old, new = (other, node) if "from" in title else (node, other)
            body = (_line_diff_html(old.answer, new.answer)
                    if is_program(trace, old) and is_program(trace, new)
                    else diff_html(visible(old.text), visible(new.text)))
            parts.append(f'<details class="diff" open><summary>'
                         f"{title.format(_link(other_id, index))}</summary>{body}</details>")
    messages = "".join(f'<div class="msg"><div class="role">{_e(m.get("role"))}</div>'
                       f'{_pre(str(m.get("content") or ""))}</div>' for m in node.messages)
    parts.append(f'<details class="messages"><summary>Messages sent ({len(node.messages)})'
                 f"</summary>{messages}</details>")
    return parts


def _node_section(trace: Trace, node: Node, index: dict[str, int]) -> str:
    seconds = _duration(node)
    answer = ""
    if gives_answer(node.stage) and node.answer is not None:
        label = answer_text(node.answer, node.tests)  # a program: what its tests said
        answer = f" · answer <bdi>{_e(_short(label, SUMMARY_ANSWER_CHARS))}</bdi>"
        answer += {True: ' <span class="ok">✓</span>', False: ' <span class="bad">✗</span>'}.get(
            node.correct, "")
    is_open = " open" if node.stage == "final" or node.status == "failed" else ""
    summary = (
        f'<bdi class="nid">{_e(node.id)}</bdi> <span class="badge sg-{_e(node.stage)}">'
        f'{_e(node.stage)}</span> <span class="badge st-{_e(node.status)}">{_e(node.status)}'
        f"</span> round {node.round} · branch {node.branch}{answer} · {node.tokens:,} tokens"
        + (f" · {seconds:.2f} s" if seconds is not None else "")
    )
    return (f'<details class="node sg-{_e(node.stage)}" id="n{index[node.id]}" '
            f'data-node-id="{_e(node.id)}"{is_open}><summary>{summary}</summary>'
            f'<div class="body">{"".join(_node_body(trace, node, index))}</div></details>')


def _replay_plan(trace: Trace) -> dict[str, Any]:
    """Seconds since the first call at which each node started and finished, in start order,
    with its column of the tree (the page's script shows them by `replay.shown_share`)."""
    items = [{"i": i, "col": column_of(node), "start": start, "end": end}
             for i, (node, (start, end)) in enumerate(zip(trace.nodes, node_spans(trace),
                                                          strict=True))]
    items.sort(key=lambda item: (item["start"], item["end"], item["i"]))
    return {
        "columns": build_graph(trace).graph["column_labels"],
        "duration": max((item["end"] for item in items), default=0.0),
        "nodes": items,
    }


def render_report(trace: Trace) -> str:
    """The whole report of `trace` as one self-contained HTML document."""
    index = {node.id: i for i, node in enumerate(trace.nodes)}
    figures = {"tree": tree_figure(trace), "flow": answer_flow_figure(trace),
               "timeline": timeline_figure(trace)}
    figures_json = "{" + ",".join(f'"{k}":{fig.to_json()}' for k, fig in figures.items()) + "}"
    blocks = "\n".join((_data_block("pdr-trace", trace.to_json(indent=None)),
                        _data_block("pdr-figures", figures_json),
                        _data_block("pdr-replay", json.dumps(_replay_plan(trace)))))
    return Template(_asset("report.html")).substitute(
        run_id=_e(trace.id), question=_e(_short(trace.question, 80)), css=_asset("report.css"),
        node_count=len(trace.nodes), header=_header(trace), budget=_budget_table(trace),
        speeds="".join(f'<option value="{s}">{s}×</option>' for s in SPEEDS),
        nodes="".join(_node_section(trace, node, index) for node in trace.nodes),
        data_blocks=blocks, plotly=get_plotlyjs(), script=_asset("report.js"))


def write_report(trace: Trace, path: str | Path) -> Path:
    """Write the report of `trace` to `path`; returns the path."""
    target = Path(path)
    target.write_text(render_report(trace), encoding="utf-8")
    return target

