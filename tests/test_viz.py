"""Trace -> graph -> figures: structure, colours, marks, escaping, critical path, budgets."""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from conftest import REFERENCE, run_fake

from pdr_core.answers import normalize_answer
from pdr_core.config import RunConfig
from pdr_core.render.budget import budget_table
from pdr_core.render.flow import answer_flow_figure, lost_answer_rounds
from pdr_core.render.graph import (
    CORRECT_COLOR,
    FAILED_COLOR,
    INCORRECT_COLOR,
    answer_colors,
    build_graph,
    column_of,
    node_id_from_point,
)
from pdr_core.render.timeline import critical_path, timeline_figure
from pdr_core.render.tree import tree_figure
from pdr_core.testing import FakeProvider, question_value

CONFIGS = [
    RunConfig(method="pdr", width=4, depth=3, distill="summary"),
    RunConfig(method="pdr", width=4, depth=3, distill="per-sample-topk", k=2),
    RunConfig(method="sr", depth=3),
    RunConfig(method="vote", width=5),
]


def marker_traces(fig):
    """The traces that draw nodes: the ones carrying node ids."""
    return [t for t in fig.data if t.customdata is not None]


def trace_of(fig, node_id):
    [found] = [t for t in marker_traces(fig) if node_id in t.customdata]
    return found


def point_of(fig, node_id):
    t = trace_of(fig, node_id)
    return t, list(t.customdata).index(node_id)


def per_point(value, index):
    return value[index] if isinstance(value, list | tuple) else value


def answer_by_seed(table, default="7"):
    """An answer rule: `table[seed]` (a value or 'right'), else `default`."""

    def rule(messages, seed):
        value = table.get(seed, default)
        return question_value(messages) if value == "right" else value

    return rule


# --- graph ----------------------------------------------------------------------------------


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.method}-{c.distill}")
def test_graph_nodes_and_edges_are_the_trace(config):
    trace = run_fake(config)
    graph = build_graph(trace)
    assert set(graph.nodes) == {n.id for n in trace.nodes}
    assert set(graph.edges) == {(p, n.id) for n in trace.nodes for p in n.parent_ids}
    for node in trace.nodes:
        assert graph.nodes[node.id]["node"] is node


def test_columns_rows_and_labels():
    trace = run_fake(RunConfig(method="pdr", depth=3, width_schedule=(4, 2, 1)))
    graph = build_graph(trace)
    place = {n: (graph.nodes[n]["column"], graph.nodes[n]["row"]) for n in graph.nodes}
    assert place == {
        "r1-draft-0": (0, 0), "r1-draft-1": (0, 1), "r1-draft-2": (0, 2), "r1-draft-3": (0, 3),
        "r1-distill-0": (1, 1.5),
        "r2-refine-0": (2, 1), "r2-refine-1": (2, 2),
        "r2-distill-0": (3, 1.5),
        "r3-final-0": (4, 1.5),
    }
    assert graph.graph["column_labels"] == [
        "Round 1 drafts", "Distill 1", "Round 2", "Distill 2", "Final"
    ]
    fig = tree_figure(trace)
    assert list(fig.layout.xaxis.ticktext) == graph.graph["column_labels"]
    assert list(fig.layout.xaxis.tickvals) == [0, 1, 2, 3, 4]


def test_column_of_follows_the_stage_order():
    trace = run_fake(RunConfig(method="sr", depth=3, sr_summary=True))
    assert [column_of(n) for n in sorted(trace.nodes, key=column_of)] == [0, 1, 2, 3, 4]
    assert column_of(trace.node("r2-distill-0")) == 3


# --- tree -----------------------------------------------------------------------------------


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.method}-{c.distill}")
def test_tree_customdata_covers_every_node_once(config):
    trace = run_fake(config, FakeProvider(fail=lambda m, seed: "boom" if seed == 1 else None))
    fig = tree_figure(trace, selected=trace.nodes[0].id)
    ids = [i for t in marker_traces(fig) for i in t.customdata]
    assert Counter(ids) == Counter(n.id for n in trace.nodes)
    assert fig.layout.clickmode == "event+select"
    # Few traces, not one per node.
    assert len(fig.data) <= 10


def test_legend_names_have_answers_with_counts():
    trace = run_fake(RunConfig(method="pdr", width=4, depth=3))
    fig = tree_figure(trace)
    counts = Counter(normalize_answer(n.answer) for n in trace.nodes if n.answer)
    assert counts["52"] and counts["53"]
    names = [t.name for t in fig.data if t.showlegend is not False]
    assert f"52 (×{counts['52']}) ✓" in names
    assert f"53 (×{counts['53']}) ✗" in names
    assert "workspace (distill)" in names
    assert len(trace_of(fig, "r1-draft-0").customdata) == counts["52"]


def test_answer_colors_are_shared_by_tree_and_flow():
    trace = run_fake(RunConfig(method="pdr", width=4, depth=3))
    colors = answer_colors(trace)
    assert list(colors) == ["52", "53"]  # biggest cluster first
    assert len(set(colors.values())) == 2
    tree = tree_figure(trace)
    assert trace_of(tree, "r1-draft-0").marker.color == colors["52"]
    assert trace_of(tree, "r1-draft-3").marker.color == colors["53"]
    flow = answer_flow_figure(trace)
    bars = {t.name.split(" ")[0]: t.marker.color for t in flow.data}
    assert bars == {"52": colors["52"], "53": colors["53"]}


def test_failed_node_has_the_failed_marker():
    trace = run_fake(RunConfig(method="pdr", width=4, depth=3),
                     FakeProvider(fail=lambda m, seed: "server <exploded>" if seed == 2 else None))
    assert trace.node("r1-draft-2").status == "failed"
    fig = tree_figure(trace)
    failed, index = point_of(fig, "r1-draft-2")
    assert failed.name == "failed"
    assert failed.marker.symbol == "x"
    assert failed.marker.color == FAILED_COLOR
    assert list(failed.customdata) == ["r1-draft-2"]
    hover = failed.hovertext[index]
    assert "status: failed" in hover and "server &lt;exploded&gt;" in hover
    assert trace_of(fig, "r1-draft-0").marker.symbol == "circle"


def test_correct_and_incorrect_nodes_are_marked_with_a_reference():
    trace = run_fake(RunConfig(method="pdr", width=4, depth=3))
    fig = tree_figure(trace)
    right, i = point_of(fig, "r1-draft-0")
    wrong, j = point_of(fig, "r1-draft-3")
    assert (trace.node("r1-draft-0").correct, trace.node("r1-draft-3").correct) == (True, False)
    assert right.text[i] == "✓" and per_point(right.marker.line.color, i) == CORRECT_COLOR
    assert wrong.text[j] == "✗" and per_point(wrong.marker.line.color, j) == INCORRECT_COLOR
    distill, k = point_of(fig, "r1-distill-0")
    assert distill.marker.symbol == "square" and not (distill.text or [""])[k]


def test_no_marks_without_a_reference():
    trace = run_fake(RunConfig(method="pdr", width=4, depth=3), reference=None)
    fig = tree_figure(trace)
    assert all(not any(t.text or []) for t in marker_traces(fig))
    assert not any("✓" in (t.name or "") or "✗" in (t.name or "") for t in fig.data)


def test_running_node_is_hollow_with_a_dotted_edge():
    trace = run_fake(RunConfig(method="pdr", width=4, depth=3))
    node = trace.node("r3-final-0")
    node.status, node.finished_at, node.answer, node.correct = "running", None, None, None
    trace.status = "running"
    fig = tree_figure(trace)
    running = trace_of(fig, "r3-final-0")
    assert running.name == "running" and running.marker.symbol == "circle-open"
    assert any(t.mode == "lines" and t.line.dash == "dot" for t in fig.data)
    timeline_figure(trace, now=datetime.now(UTC) + timedelta(seconds=3))
    [note] = answer_flow_figure(trace).layout.annotations
    assert note.text == "running…"


def test_selected_node_is_ringed_and_unknown_selection_ignored():
    trace = run_fake(RunConfig(method="pdr", width=4, depth=3))
    graph = build_graph(trace)
    fig = tree_figure(trace, selected="r2-refine-1")
    [ring] = [t for t in fig.data if t.name == "selected"]
    assert (ring.x[0], ring.y[0]) == (graph.nodes["r2-refine-1"]["column"],
                                      graph.nodes["r2-refine-1"]["row"])
    assert ring.hoverinfo == "skip" and ring.customdata is None
    plain = tree_figure(trace, selected="gone")
    assert not any(t.name == "selected" for t in plain.data)


def test_node_id_from_point():
    assert node_id_from_point({"customdata": "r1-draft-0", "x": 0}) == "r1-draft-0"
    assert node_id_from_point({"customdata": ["r2-refine-1"]}) == "r2-refine-1"
    assert node_id_from_point({"x": 1}) is None


def test_hover_text_escapes_model_output():
    hostile = "<script>alert(1)</script>"
    trace = run_fake(RunConfig(method="pdr", width=2, depth=2),
                     FakeProvider(answer=lambda m, seed: hostile))
    node = trace.node("r1-draft-0")
    assert hostile in node.text and node.answer == hostile
    tree = tree_figure(trace)
    t, i = point_of(tree, "r1-draft-0")
    assert "&lt;script&gt;" in t.hovertext[i]
    figures = [tree, answer_flow_figure(trace), timeline_figure(trace)]
    for fig in figures:
        dumped = fig.to_json()
        assert "<script" not in dumped and "\\u003cscript" not in dumped.lower()
    assert all("<script" not in (t.name or "") for fig in figures for t in fig.data)


def test_hover_has_the_node_facts():
    trace = run_fake(RunConfig(method="pdr", width=2, depth=2))
    t, i = point_of(tree_figure(trace), "r1-draft-1")
    hover = t.hovertext[i]
    node = trace.node("r1-draft-1")
    for part in ("stage: draft", "round 1", "branch 1", f"answer: {node.answer}",
                 f"tokens: {node.tokens}", "seconds:", "status: ok"):
        assert part in hover


# --- answer flow ----------------------------------------------------------------------------


def test_answer_flow_stacks_counts_per_round():
    trace = run_fake(RunConfig(method="pdr", width=4, depth=3))
    fig = answer_flow_figure(trace)
    assert fig.layout.barmode == "stack"
    by_name = {t.name: list(t.y) for t in fig.data}
    assert list(fig.data[0].x) == ["Round 1", "Round 2", "Final"]
    assert by_name["52 (×7) ✓"] == [3, 3, 1]
    assert by_name["53 (×2) ✗"] == [1, 1, 0]
    [note] = fig.layout.annotations
    assert "final: 52" in note.text and "first seen in Round 1" in note.text


def test_final_answer_no_node_gave_is_said_plainly():
    trace = run_fake(RunConfig(method="vote", width=2))
    trace.final_answer, trace.correct = "<i>99</i>", False
    [note] = answer_flow_figure(trace).layout.annotations
    assert note.text.startswith("final: &lt;i&gt;99&lt;/i&gt; ✗<br>given by no generation shown")


def test_lost_answer_rounds():
    # Round 1: only seed 0 is right; round 2 (seeds 1000..) all wrong; the final right again.
    rule = answer_by_seed({0: "right", 2000: "right"})
    trace = run_fake(RunConfig(method="pdr", width=3, depth=3), FakeProvider(answer=rule))
    assert [n.correct for n in trace.nodes if n.round == 2 and n.stage == "refine"] == [False] * 3
    assert lost_answer_rounds(trace) == [1]
    fig = answer_flow_figure(trace)
    assert any("lost" in a.text for a in fig.layout.annotations)

    kept = run_fake(RunConfig(method="pdr", width=3, depth=3),
                    FakeProvider(answer=answer_by_seed({0: "right", 1001: "right", 2000: "right"})))
    assert lost_answer_rounds(kept) == []
    assert not any("lost" in a.text for a in answer_flow_figure(kept).layout.annotations)


def test_lost_answer_rounds_counts_a_vote_that_loses_it():
    trace = run_fake(RunConfig(method="vote", width=3),
                     FakeProvider(answer=answer_by_seed({0: "right"})))
    assert trace.final_answer == "7" and trace.correct is False
    assert lost_answer_rounds(trace) == [1]
    [note] = answer_flow_figure(trace).layout.annotations
    assert "final: 7 ✗" in note.text and "outvoted" in note.text
    unjudged = run_fake(RunConfig(method="vote", width=3),
                        FakeProvider(answer=answer_by_seed({0: "right"})), reference=None)
    assert lost_answer_rounds(unjudged) == []


# --- timeline and critical path -------------------------------------------------------------


def timed_trace():
    """A summary pdr run with chosen timestamps: r1-draft-1 and r2-refine-2 finish last."""
    trace = run_fake(RunConfig(method="pdr", width=3, depth=3, distill="summary"))
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    spans = {
        "r1-draft-0": (0, 2), "r1-draft-1": (0, 5), "r1-draft-2": (1, 3),
        "r1-distill-0": (5, 6),
        "r2-refine-0": (6, 8), "r2-refine-1": (6.5, 7), "r2-refine-2": (6.2, 9),
        "r2-distill-0": (9, 10),
        "r3-final-0": (10, 12),
    }
    trace.created_at = t0.isoformat()
    for node in trace.nodes:
        start, end = spans[node.id]
        node.started_at = (t0 + timedelta(seconds=start)).isoformat()
        node.finished_at = (t0 + timedelta(seconds=end)).isoformat()
    return trace


def test_critical_path():
    trace = timed_trace()
    assert critical_path(trace) == [
        "r1-draft-1", "r1-distill-0", "r2-refine-2", "r2-distill-0", "r3-final-0"
    ]


def test_critical_path_skips_extractive_distills():
    trace = run_fake(RunConfig(method="pdr", width=3, depth=2, distill="topk", k=2))
    path = critical_path(trace)
    assert not any("distill" in node_id for node_id in path)
    assert [node_id.split("-")[0] for node_id in path] == ["r1", "r2"]


def test_timeline_rows_times_and_highlight():
    trace = timed_trace()
    fig = timeline_figure(trace)
    bars = {}
    for t in fig.data:
        if t.type == "bar":
            for k, node_id in enumerate(t.y):
                bars[node_id] = (t.name, t.base[k], t.x[k], per_point(t.marker.line.width, k))
    assert set(bars) == {n.id for n in trace.nodes}
    assert bars["r2-refine-2"][:3] == ("refine", 6.2, pytest.approx(2.8))
    assert bars["r1-distill-0"][0] == "distill"
    on_path = {n for n, bar in bars.items() if bar[3] > 1}
    assert on_path == set(critical_path(trace))
    order = list(fig.layout.yaxis.categoryarray)
    assert order[:3] == ["r1-draft-0", "r1-draft-1", "r1-draft-2"]
    assert order.index("r2-refine-2") < order.index("r2-refine-1")


def test_timeline_leaves_out_extractive_distills():
    trace = run_fake(RunConfig(method="pdr", width=3, depth=2, distill="topk", k=2))
    fig = timeline_figure(trace)
    rows = [i for t in fig.data if t.type == "bar" for i in t.y]
    assert sorted(rows) == sorted(n.id for n in trace.nodes if n.call)
    assert "r1-distill-0" not in rows


# --- budget ---------------------------------------------------------------------------------


def test_budget_table_matches_the_trace_budget():
    config = RunConfig(method="pdr", width=3, depth=3, distill="summary", total_budget=100_000)
    trace = run_fake(config)
    rows = budget_table(trace)
    assert [r["row"] for r in rows] == ["Round 1", "Round 2", "Round 3", "B_seq", "B_total"]
    rounds, (seq, total) = rows[:3], rows[3:]
    assert sum(r["tokens"] for r in rounds) == trace.budget.b_total == total["tokens"]
    assert seq["tokens"] == trace.budget.b_seq
    assert sum(r["calls"] for r in rounds) == trace.budget.calls == config.calls
    assert rounds[0]["calls"] == 4  # three drafts and the summary
    assert rounds[0]["cap"] == config.max_tokens and rounds[0]["within_cap"] is True
    largest = max(n.tokens for n in trace.nodes if n.round == 1)
    assert rounds[0]["largest_call"] == largest
    assert total["cap"] == 100_000 and total["within_cap"] is True
    assert total["share_of_cap"] == pytest.approx(trace.budget.b_total / 100_000)
    assert all(set(r) == set(rows[0]) for r in rows)


def test_budget_table_flags_a_call_over_its_cap():
    trace = run_fake(RunConfig(method="vote", width=2))
    trace.node("r1-draft-0").usage["completion_tokens"] = trace.config["max_tokens"] + 1
    [round_row, _, total] = budget_table(trace)
    assert round_row["within_cap"] is False
    assert total["cap"] is None and total["within_cap"] is None


# --- scale ----------------------------------------------------------------------------------


def test_figures_build_for_a_wide_deep_run():
    trace = run_fake(RunConfig(method="pdr", width=16, depth=8, distill="topk", k=2))
    assert len(trace.nodes) == 16 * 7 + 7 + 1
    tree = tree_figure(trace, selected="r4-refine-7")
    assert sum(len(t.customdata) for t in marker_traces(tree)) == len(trace.nodes)
    assert len(tree.data) <= 10
    assert tree.layout.height >= tree_figure(run_fake(CONFIGS[0])).layout.height
    flow = answer_flow_figure(trace)
    assert len(flow.data[0].x) == 8
    timeline = timeline_figure(trace)
    assert sum(len(t.y) for t in timeline.data if t.type == "bar") == 16 * 7 + 1
    assert REFERENCE in answer_colors(trace)
