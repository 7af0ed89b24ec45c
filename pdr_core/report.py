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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from plotly.offline import get_plotlyjs

from pdr_core import viz
from pdr_core.budget_view import COLUMNS, budget_rows
from pdr_core.diffs import diff_html, next_workspace, predecessor, predecessor_title
from pdr_core.trace import Node, Trace, gives_answer
from pdr_core.workspace import workspace_summary

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


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    # Imported traces may carry naive times; compare everything as UTC.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _duration(node: Node) -> float | None:
    start, end = _time(node.started_at), _time(node.finished_at)
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


# --- sections -------------------------------------------------------------------------------


def _header(trace: Trace) -> str:
    config, budget = trace.config, trace.budget
    start, end = _time(trace.created_at), _time(trace.finished_at)
    run_rows = [
        ("Status", f'<span class="badge st-{_e(trace.status)}">{_e(trace.status)}</span>'),
        ("Final answer", f"<bdi>{_e(trace.final_answer)}</bdi>"),
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
        "</header>"
    )


def _budget_table(trace: Trace) -> str:
    head = "".join(f"<th>{_e(title)}</th>" for title in COLUMNS.values())
    body = "".join("<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in row.values()) + "</tr>"
                   for row in budget_rows(trace))
    return f'<table class="budget"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _node_section(trace: Trace, node: Node, index: dict[str, int]) -> str:
    def link(node_id: str) -> str:
        where = index.get(node_id)
        return (f'<a href="#n{where}"><bdi>{_e(node_id)}</bdi></a>' if where is not None
                else f"<bdi>{_e(node_id)}</bdi>")

    seconds = _duration(node)
    usage = node.usage
    tokens = (f"{node.tokens:,} (prompt {int(usage.get('prompt_tokens', 0)):,}, "
              f"completion {int(usage.get('completion_tokens', 0)):,})")
    extra_usage = {k: v for k, v in usage.items()
                   if k not in ("prompt_tokens", "completion_tokens")}
    if extra_usage:
        tokens += " · " + _e(", ".join(f"{k}: {v}" for k, v in extra_usage.items()))
    generation = gives_answer(node.stage)
    rows = [
        ("Id", f"<bdi>{_e(node.id)}</bdi>"),
        ("Stage", _e(node.stage) + ("" if node.call else " (extractive, no model call)")),
        ("Round · branch", f"{node.round} · {node.branch}"),
        ("Parents", ", ".join(link(p) for p in node.parent_ids) or "– (sees the question)"),
        ("Status", f'<span class="badge st-{_e(node.status)}">{_e(node.status)}</span>'
                   + (f" (finish: {_e(node.finish_reason)})" if node.finish_reason else "")),
        ("Answer", f"<bdi>{_e(node.answer)}</bdi>" if generation else "– (workspace)"),
        ("Correct", _verdict(node.correct)),
        ("Tokens", tokens),
        ("Started", _e(node.started_at)),
        ("Finished", _e(node.finished_at)),
        ("Duration", f"{seconds:.2f} s" if seconds is not None else "–"),
    ]
    if node.stage == "distill":
        rows.append(("Workspace", _e(workspace_summary(node))))
    parts = [_kv(rows)]
    if node.status == "failed" or node.error:
        kind = f" ({_e(node.error_kind)})" if node.error_kind else ""
        parts.append(f'<div class="error"><strong>Error{kind}</strong>{_pre(node.error or "")}'
                     "</div>")
    label = "Partial output before the failure" if node.status == "failed" else "Output"
    parts.append(f"<h4>{label}</h4>"
                 + (_pre(node.text, "text output") if node.text else '<p class="muted">(none)</p>'))
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
            parts.append(f'<details class="diff" open><summary>{title.format(link(other_id))}'
                         f"</summary>{diff_html(visible(old.text), visible(new.text))}</details>")
    messages = "".join(f'<div class="msg"><div class="role">{_e(m.get("role"))}</div>'
                       f'{_pre(str(m.get("content") or ""))}</div>' for m in node.messages)
    parts.append(f'<details class="messages"><summary>Messages sent ({len(node.messages)})'
                 f"</summary>{messages}</details>")

    answer = ""
    if generation and node.answer is not None:
        answer = f" · answer <bdi>{_e(_short(node.answer, SUMMARY_ANSWER_CHARS))}</bdi>"
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
            f'<div class="body">{"".join(parts)}</div></details>')


def _replay_plan(trace: Trace) -> dict[str, Any]:
    """Seconds since the first call at which each node started and finished, in start order,
    with its column of the tree; running nodes end at the latest time the trace records."""
    spans = [(_time(n.started_at), _time(n.finished_at)) for n in trace.nodes]
    known = [t for span in spans for t in span if t is not None]
    origin = min(known, default=None)
    horizon = max(known, default=None)

    def offset(value: datetime | None) -> float:
        return round((value - origin).total_seconds(), 3) if value and origin else 0.0

    items = []
    for i, (node, (start, end)) in enumerate(zip(trace.nodes, spans, strict=True)):
        begin = offset(start)
        items.append({"i": i, "col": viz.column_of(node), "start": begin,
                      "end": max(begin, offset(end or horizon))})
    items.sort(key=lambda item: (item["start"], item["end"], item["i"]))
    return {
        "columns": viz.build_graph(trace).graph["column_labels"],
        "duration": max((item["end"] for item in items), default=0.0),
        "nodes": items,
    }


def render_report(trace: Trace) -> str:
    """The whole report of `trace` as one self-contained HTML document."""
    index = {node.id: i for i, node in enumerate(trace.nodes)}
    figures = {"tree": viz.tree_figure(trace), "flow": viz.answer_flow_figure(trace),
               "timeline": viz.timeline_figure(trace)}
    figures_json = "{" + ",".join(f'"{k}":{fig.to_json()}' for k, fig in figures.items()) + "}"
    speeds = "".join(f'<option value="{s}">{s}×</option>' for s in SPEEDS)
    nodes = "".join(_node_section(trace, node, index) for node in trace.nodes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="PDR Inspector">
<title>PDR run {_e(trace.id)}: {_e(_short(trace.question, 80))}</title>
<style>{_CSS}</style></head>
<body><nav><a href="#overview">Overview</a><a href="#tree">Tree &amp; replay</a>
<a href="#flow">Answer flow</a><a href="#timeline">Timeline</a><a href="#budget">Budget</a>
<a href="#nodes">Nodes ({len(trace.nodes)})</a></nav>
<main>{_header(trace)}
<noscript><p class="error">The figures and the replay need JavaScript; the rest of this
report reads without it.</p></noscript>
<section id="tree"><h2>Tree</h2>
<div class="controls" role="group" aria-label="Replay">
<button type="button" id="replay-play">▶ Replay</button>
<button type="button" id="replay-restart">⟲ Restart</button>
<label>speed <select id="replay-speed">{speeds}</select></label>
<input type="range" id="replay-scrub" min="0" max="1000" value="0" aria-label="replay position">
<span id="replay-clock" class="muted"></span></div>
<p class="muted hint">Click a node to open its details. Replay plays the run back as it
happened: calls appear when they started and their text streams in over their real duration.
</p>
<div id="fig-tree" class="fig"></div>
<div id="replay-board" class="board" hidden></div></section>
<section id="flow"><h2>Answer flow</h2><div id="fig-flow" class="fig"></div></section>
<section id="timeline"><h2>Timeline</h2><div id="fig-timeline" class="fig"></div></section>
<section id="budget"><h2>Budget</h2>{_budget_table(trace)}</section>
<section id="nodes"><h2>Nodes</h2>
<p><button type="button" id="expand-all">Expand all</button>
<button type="button" id="collapse-all">Collapse all</button>
<button type="button" id="download-trace">Download trace JSON</button></p>{nodes}</section>
</main>
{_data_block("pdr-trace", trace.to_json(indent=None))}
{_data_block("pdr-figures", figures_json)}
{_data_block("pdr-replay", json.dumps(_replay_plan(trace)))}
<script>window.PlotlyConfig = {{MathJaxConfig: "local"}};</script>
<script>{get_plotlyjs()}</script>
<script>{_JS}</script>
</body></html>
"""


def write_report(trace: Trace, path: str | Path) -> Path:
    """Write the report of `trace` to `path`; returns the path."""
    target = Path(path)
    target.write_text(render_report(trace), encoding="utf-8")
    return target


_CSS = """
:root { --fg: #1f2937; --muted: #6b7280; --line: #e5e7eb; --soft: #f8fafc; --accent: #2563eb;
  --ok: #15803d; --bad: #b91c1c; --mono: ui-monospace, SFMono-Regular, Menlo, Consolas,
  "Liberation Mono", monospace; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff; line-height: 1.45; font: 14px/1.45
  system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  overflow-wrap: anywhere; }
nav { position: sticky; top: 0; z-index: 10; background: #fffffff0; border-bottom: 1px solid
  var(--line); padding: 6px 16px; display: flex; flex-wrap: wrap; gap: 4px 16px; }
nav a, a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
main { max-width: 1180px; margin: 0 auto; padding: 8px 16px 48px; }
h1 { font-size: 1.5rem; margin: 12px 0; } h2 { font-size: 1.2rem; margin: 28px 0 8px;
  border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 1rem; margin: 14px 0 6px; } h4 { margin: 12px 0 4px; font-size: .92rem; }
section { scroll-margin-top: 40px; }
/* A right-to-left override in model text must not reorder anything around it. */
pre, bdi, .pdr-diff, .pdr-diff ins, .pdr-diff del { unicode-bidi: isolate; }
pre.text { white-space: pre-wrap; overflow-wrap: anywhere; word-break: break-word;
  font: 12.5px/1.5 var(--mono); background: var(--soft); border: 1px solid var(--line);
  border-radius: 6px; padding: 8px 10px; margin: 4px 0; max-height: 32em; overflow: auto; }
pre.question { font-family: inherit; font-size: 14px; max-height: none; }
.cols { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr));
  gap: 0 32px; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 4px 0; }
dl.kv > div { display: contents; } dt { color: var(--muted); } dd { margin: 0; }
.badge { display: inline-block; padding: 0 6px; border-radius: 9px; font-size: 12px;
  background: #eef2f7; }
.st-completed, .st-ok { background: #dcfce7; color: var(--ok); }
.st-failed, .st-interrupted { background: #fee2e2; color: var(--bad); }
.st-running { background: #e0e7ff; color: #3730a3; }
.ok { color: var(--ok); } .bad { color: var(--bad); } .muted { color: var(--muted); }
.error { border: 1px solid #fecaca; background: #fef2f2; border-radius: 6px;
  padding: 6px 10px; margin: 8px 0; } .error strong { color: var(--bad); }
table.budget { border-collapse: collapse; width: 100%; overflow-wrap: normal; }
table.budget th, table.budget td { border-bottom: 1px solid var(--line); padding: 4px 8px;
  text-align: right; } table.budget th:first-child, table.budget td:first-child
  { text-align: left; }
table.budget tr:nth-last-child(-n+2) td { font-weight: 600; }
.fig { width: 100%; min-height: 120px; }
.controls { display: flex; flex-wrap: wrap; align-items: center; gap: 8px; margin: 4px 0; }
.controls input[type=range] { flex: 1 1 160px; }
button, select { font: inherit; padding: 3px 10px; border: 1px solid #cbd5e1;
  border-radius: 6px; background: #fff; cursor: pointer; }
button:hover { background: var(--soft); }
details.node { border: 1px solid var(--line); border-left: 4px solid #94a3b8;
  border-radius: 6px; margin: 8px 0; scroll-margin-top: 40px; }
details.node > summary { padding: 6px 10px; cursor: pointer; }
details.node > .body { padding: 0 12px 10px; }
details.node.flash { box-shadow: 0 0 0 3px #93c5fd; }
.sg-draft { border-left-color: #4c78a8 !important; } .sg-distill { border-left-color: #94a3b8; }
.sg-refine { border-left-color: #f58518 !important; } .sg-final { border-left-color: #54a24b
  !important; }
.nid { font-family: var(--mono); font-weight: 600; }
.msg .role { font-size: 12px; color: var(--muted); text-transform: uppercase; margin-top: 6px; }
details.diff > summary, details.messages > summary { cursor: pointer; margin: 8px 0 4px;
  font-weight: 600; font-size: .92rem; }
.board { display: grid; grid-auto-flow: column; grid-auto-columns: minmax(220px, 1fr);
  gap: 10px; overflow-x: auto; padding: 8px 0; }
.board h4 { margin: 0 0 6px; color: var(--muted); }
.replay-card { border: 1px solid var(--line); border-left: 4px solid #94a3b8;
  border-radius: 6px; padding: 6px 8px; margin-bottom: 8px; cursor: pointer; }
.replay-card.running { box-shadow: 0 0 0 2px #c7d2fe; }
.replay-card pre.text { max-height: 9em; font-size: 11.5px; }
.rc-head { display: flex; justify-content: space-between; gap: 6px; }
.rc-head .badge { flex: none; align-self: flex-start; }
.pdr-diff { font: 12.5px/1.5 var(--mono); border: 1px solid var(--line); border-radius: 6px;
  padding: 8px 10px; max-height: 32em; overflow: auto; }
@media print {
  nav, .controls, .hint, .board, button { display: none !important; }
  main { max-width: none; padding: 0; }
  pre.text { max-height: none; overflow: visible; }
  .fig, dl.kv, .msg { break-inside: avoid; }
}
"""

# Page script: plain ES2017, no network, text only through textContent.
_JS = r"""
(function () {
  "use strict";
  var read = function (id) { return JSON.parse(document.getElementById(id).textContent); };
  var trace = read("pdr-trace"), figures = read("pdr-figures"), plan = read("pdr-replay");
  var nodes = trace.nodes, indexOf = new Map();
  nodes.forEach(function (n, i) { indexOf.set(n.id, i); });
  var CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/g;
  function visible(s) {
    return (s || "").replace(CONTROL, function (c) {
      return c === "\u007F" ? "\u2421" : String.fromCharCode(0x2400 + c.charCodeAt(0));
    });
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function openNode(id) {
    var section = document.getElementById("n" + indexOf.get(id));
    if (!section) return;
    section.open = true;
    section.scrollIntoView({block: "start"});
    section.classList.add("flash");
    setTimeout(function () { section.classList.remove("flash"); }, 1500);
  }
  window.addEventListener("hashchange", function () {
    var target = document.getElementById(location.hash.slice(1));
    if (target && target.tagName === "DETAILS") target.open = true;
  });
  function setAll(open) {
    document.querySelectorAll("details.node").forEach(function (d) { d.open = open; });
  }
  document.getElementById("expand-all").onclick = function () { setAll(true); };
  document.getElementById("collapse-all").onclick = function () { setAll(false); };
  // Figures drawn at screen width would be cut at the paper's edge: redraw them to fit.
  var PRINT_WIDTH = 680;
  var figureDivs = Object.keys(figures).map(function (key) {
    return document.getElementById("fig-" + key);
  });
  window.addEventListener("beforeprint", function () {
    setAll(true);
    figureDivs.forEach(function (div) { Plotly.relayout(div, {width: PRINT_WIDTH}); });
  });
  window.addEventListener("afterprint", function () {
    setTimeout(function () {  // once the page has its screen layout back
      figureDivs.forEach(function (div) { Plotly.relayout(div, {width: null, autosize: true}); });
    }, 50);
  });
  document.getElementById("download-trace").onclick = function () {
    var blob = new Blob([JSON.stringify(trace, null, 2)], {type: "application/json"});
    var a = el("a");
    a.href = URL.createObjectURL(blob);
    a.download = String(trace.id).replace(/[^A-Za-z0-9._-]/g, "_") + ".json";
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); }, 1000);
  };

  var plotConfig = {responsive: true, displaylogo: false};
  var tree = document.getElementById("fig-tree");
  // Plotly keeps (and restyle replaces) the arrays it is given: keep the tree's own copies.
  var treeTraces = figures.tree.data.map(function (trace) {
    return {ids: Array.isArray(trace.customdata) ? trace.customdata.slice() : null,
            text: Array.isArray(trace.text) ? trace.text.slice() : null,
            markers: String(trace.mode).indexOf("markers") >= 0};
  });
  Object.keys(figures).forEach(function (key) {
    var div = document.getElementById("fig-" + key), fig = figures[key];
    Plotly.newPlot(div, fig.data, fig.layout, plotConfig).then(function () {
      div.on("plotly_click", function (event) {
        var point = event && event.points && event.points[0];
        var id = point && point.customdata;
        if (Array.isArray(id)) id = id[0];
        if (typeof id === "string") openNode(id);
      });
    });
  });

  // --- replay: the state at run time t is a pure function of t, so play, pause, restart
  // and the scrubber only move t.
  var items = plan.nodes, duration = plan.duration;
  var board = document.getElementById("replay-board");
  var playButton = document.getElementById("replay-play");
  var speedSelect = document.getElementById("replay-speed");
  var scrub = document.getElementById("replay-scrub");
  var clock = document.getElementById("replay-clock");
  var columns = plan.columns.map(function (label) {
    var column = el("div", "replay-col");
    column.appendChild(el("h4", null, label));
    board.appendChild(column);
    return column;
  });
  var cards = new Map(), texts = new Map();
  var t = 0, active = false, timer = null, last = 0, treeState = "";

  function cardFor(item) {
    var card = cards.get(item.i);
    if (card) return card;
    var n = nodes[item.i];
    var root = el("div", "replay-card sg-" + n.stage);
    root.dataset.nodeId = n.id;
    root.dataset.branch = n.branch;
    var head = el("div", "rc-head"), status = el("span", "badge");
    head.appendChild(el("bdi", "nid", n.id));
    head.appendChild(status);
    var pre = el("pre", "text");
    pre.dir = "auto";
    var foot = el("div", "rc-foot muted");
    root.appendChild(head);
    root.appendChild(pre);
    root.appendChild(foot);
    root.addEventListener("click", function () { openNode(n.id); });
    var column = columns[item.col] || columns[columns.length - 1];
    var after = Array.prototype.find.call(column.children, function (c) {
      return c.dataset.branch !== undefined && Number(c.dataset.branch) > n.branch;
    });
    column.insertBefore(root, after || null);
    card = {root: root, pre: pre, status: status, foot: foot, shown: -1, state: ""};
    cards.set(item.i, card);
    return card;
  }
  function textOf(i) {
    if (!texts.has(i)) texts.set(i, visible(nodes[i].text));
    return texts.get(i);
  }
  function footer(n) {
    var parts = [];
    if (n.stage !== "distill" && n.status === "ok") {
      parts.push("answer: " + (n.answer === null ? "none" : n.answer)
                 + (n.correct === true ? " ✓" : n.correct === false ? " ✗" : ""));
    }
    if (n.error) parts.push("error: " + n.error);
    var tokens = (n.usage.prompt_tokens || 0) + (n.usage.completion_tokens || 0);
    parts.push(tokens + " tokens");
    return visible(parts.join(" · "));
  }
  function render() {
    var shown = 0, states = [];
    items.forEach(function (item) {
      var card = cards.get(item.i);
      if (t < item.start || !active) {
        if (card) card.root.hidden = true;
        states.push(0);
        return;
      }
      shown += 1;
      card = cardFor(item);
      card.root.hidden = false;
      var n = nodes[item.i], text = textOf(item.i), done = t >= item.end;
      var length = done ? text.length
        : Math.floor(text.length * (t - item.start) / (item.end - item.start));
      // Never cut a surrogate pair in half.
      var code = text.charCodeAt(length - 1);
      if (!done && code >= 0xD800 && code < 0xDC00) length -= 1;
      if (length !== card.shown) {
        card.pre.textContent = text.slice(0, length);
        card.shown = length;
        if (!done) card.pre.scrollTop = card.pre.scrollHeight;
      }
      var state = done ? n.status : "running";
      if (state !== card.state) {
        card.state = state;
        card.root.className = "replay-card sg-" + n.stage + (done ? " done" : " running");
        card.status.className = "badge st-" + state;
        card.status.textContent = state === "running" ? "running…" : state;
        card.foot.textContent = done ? footer(n) : "";
      }
      states.push(done ? 2 : 1);
    });
    clock.textContent = t.toFixed(1) + " s of " + duration.toFixed(1) + " s · "
      + shown + " of " + items.length + " nodes";
    scrub.value = duration > 0 ? Math.round(1000 * t / duration) : (t > 0 ? 1000 : 0);
    fadeTree(states);
  }
  // Nodes of the tree that have not started yet are faded; running ones half.
  function fadeTree(states) {
    var key = active ? states.join("") : "";
    if (key === treeState || !tree.data) return;
    treeState = key;
    var stateOf = new Map();
    items.forEach(function (item, k) { stateOf.set(nodes[item.i].id, states[k]); });
    var levels = [0.12, 0.45, 1];
    var level = function (id) { return active ? levels[stateOf.get(id) || 0] : 1; };
    treeTraces.forEach(function (trace, ti) {
      if (!trace.ids || !trace.markers) return;
      // A clicked (selected) point would make plotly draw every marker opaque.
      var update = {"marker.opacity": [trace.ids.map(level)], selectedpoints: [null]};
      if (trace.text) {
        update.text = [trace.text.map(function (s, k) {
          return level(trace.ids[k]) === 1 ? s : "";
        })];
      }
      Plotly.restyle(tree, update, [ti]);
    });
  }
  function setPlaying(on) {
    clearInterval(timer);
    timer = null;
    playButton.textContent = on ? "❚❚ Pause" : "▶ Replay";
    if (!on) return;
    active = true;
    board.hidden = false;
    last = performance.now();
    timer = setInterval(function () {
      var now = performance.now();
      t = Math.min(duration, t + (now - last) / 1000 * Number(speedSelect.value));
      last = now;
      render();
      if (t >= duration) setPlaying(false);
    }, 40);
    render();
  }
  playButton.onclick = function () {
    if (timer) return setPlaying(false);
    if (t >= duration) t = 0;
    setPlaying(true);
  };
  document.getElementById("replay-restart").onclick = function () {
    t = 0;
    setPlaying(true);
  };
  scrub.oninput = function () {
    active = true;
    board.hidden = false;
    t = duration * Number(scrub.value) / 1000;
    render();
  };
  render();
})();
"""
