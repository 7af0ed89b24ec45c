"""The tree, timeline and budget views render every method's stages, and unknown ones."""

import pytest
from conftest import QUESTION, run_fake

from pdr_core.config import RunConfig
from pdr_core.render.budget import budget_table
from pdr_core.render.graph import build_graph
from pdr_core.render.timeline import timeline_figure
from pdr_core.render.tree import tree_figure
from pdr_core.run.preview import preview
from pdr_core.trace_import import trace_from_dict

CONFIGS = {
    "rsa": (RunConfig(method="rsa", width=4, k=2, depth=2), "aggregate"),
    "tournament": (RunConfig(method="tournament", width=4, group=2, votes=2), "judge"),
    "select": (RunConfig(method="select", width=3), "select"),
    "moa": (RunConfig(method="moa", method_settings={"proposers": "a,b,c", "layers": 2}),
            "propose"),
}


def _ids_by_trace(figure):
    return {t.name: list(t.customdata) for t in figure.data if t.customdata is not None}


@pytest.mark.parametrize("method", list(CONFIGS))
def test_every_node_of_every_method_is_drawn_in_the_tree_timeline_and_budget(method):
    config, stage = CONFIGS[method]
    trace = run_fake(config)
    ids = {n.id for n in trace.nodes}
    tree = _ids_by_trace(tree_figure(trace))
    assert {i for members in tree.values() for i in members} == ids
    graph = build_graph(trace)
    labels = graph.graph["column_labels"]
    stage_columns = {graph.nodes[n.id]["column"] for n in trace.nodes if n.stage == stage}
    assert all(stage in labels[c] for c in stage_columns)
    assert labels[0] == "Round 1 drafts"
    timeline = _ids_by_trace(timeline_figure(trace))
    assert set(timeline) == {n.stage for n in trace.nodes}
    assert {i for members in timeline.values() for i in members} == ids
    for name, members in timeline.items():
        assert {trace.node(i).stage for i in members} == {name}
    rows = {r["row"]: r for r in budget_table(trace)}
    for round_ in {n.round for n in trace.nodes}:
        assert rows[f"Round {round_}"]["calls"] == sum(1 for n in trace.nodes
                                                       if n.round == round_)
    assert rows["B_total"]["calls"] == config.calls


def test_judge_and_select_nodes_are_choices_not_answers_in_the_tree():
    trace = run_fake(CONFIGS["tournament"][0])
    tree = _ids_by_trace(tree_figure(trace))
    judges = sorted(n.id for n in trace.nodes if n.stage == "judge")
    assert sorted(tree["choice (judge / select)"]) == judges
    drafts = {n.id for n in trace.nodes if n.stage == "draft"}
    answers = {i for name, members in tree.items() if "×" in name for i in members}
    assert answers == drafts


def test_a_stage_no_method_of_this_tool_uses_still_renders():
    trace = run_fake(RunConfig(method="vote", width=2))
    data = trace.to_dict()
    data["nodes"][1]["stage"] = "critique"
    data["nodes"][1]["round"] = 2
    imported = trace_from_dict(data)
    timeline = _ids_by_trace(timeline_figure(imported))
    assert timeline["critique"] == [data["nodes"][1]["id"]]
    labels = build_graph(imported).graph["column_labels"]
    assert "critique" in labels[2]
    assert data["nodes"][1]["id"] in {i for m in _ids_by_trace(tree_figure(imported)).values()
                                      for i in m}


@pytest.mark.parametrize("method", list(CONFIGS))
def test_the_budget_preview_bounds_what_a_run_of_every_method_spends(method):
    # Outputs cut at their budget, so that candidates fill the prompts that read them.
    config = RunConfig(**{**CONFIGS[method][0].to_dict(), "max_tokens": 16,
                          "workspace_tokens": 16, "width_schedule": None,
                          "prompts": CONFIGS[method][0].prompts})
    trace = run_fake(config)
    estimate = preview(config, QUESTION)
    assert estimate.calls == trace.budget.calls
    prompts = sum(int(n.usage["prompt_tokens"]) for n in trace.nodes)
    assert prompts <= estimate.worst_prompt_tokens
    assert trace.budget.b_total <= estimate.worst_b_total
    assert trace.budget.b_seq <= estimate.worst_b_seq
