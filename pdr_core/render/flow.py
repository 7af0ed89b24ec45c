"""The answer flow: how many generations gave each answer, round by round."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from pdr_core.render.graph import (
    CORRECT_COLOR,
    FAILED,
    FAILED_COLOR,
    FONT,
    INCORRECT_COLOR,
    LEGEND_ANSWER_CHARS,
    NO_ANSWER,
    NO_ANSWER_COLOR,
    PALETTE,
    RUNNING,
    RUNNING_COLOR,
    answer_groups,
    answer_label,
    esc,
    is_generation,
)
from pdr_core.tasks import answer_text, final_tests, trace_key
from pdr_core.trace import Node, Trace


def _generations_by_round(trace: Trace) -> dict[int, list[Node]]:
    rounds: dict[int, list[Node]] = {}
    for node in trace.nodes:
        if is_generation(node):
            rounds.setdefault(node.round, []).append(node)
    return dict(sorted(rounds.items()))


def lost_answer_rounds(trace: Trace) -> list[int]:
    """Rounds where some generation was right but the next round had none right.

    For the last round, "the next round" is the run's final answer (e.g. a vote that
    outvoted the right answer). Needs a reference answer; rounds whose successor is still
    running, or never ran, are not judged.
    """
    if trace.reference_answer is None and trace.task is None:
        return []
    by_round = _generations_by_round(trace)
    last = max(by_round, default=0)
    lost = []
    for round_, nodes in by_round.items():
        if not any(n.status == "ok" and n.correct for n in nodes):
            continue
        if round_ < last:
            following = by_round.get(round_ + 1, [])
            if not following or any(n.status == "running" for n in following):
                continue
            if not any(n.status == "ok" and n.correct for n in following):
                lost.append(round_)
        elif trace.status == "completed" and trace.correct is False:
            lost.append(round_)
    return lost


def _round_label(nodes: list[Node], round_: int) -> str:
    return "Final" if any(n.stage == "final" for n in nodes) else f"Round {round_}"


def answer_flow_figure(trace: Trace) -> go.Figure:
    """Per round, stacked bars of answer counts (the tree's colours), where the final answer
    came from, and the rounds that lost a correct answer (with a reference)."""
    by_round = _generations_by_round(trace)
    labels = [_round_label(nodes, r) for r, nodes in by_round.items()]
    key_of = trace_key(trace)
    keys_by_round = [
        [
            FAILED if n.status == "failed"
            else RUNNING if n.status == "running"
            else key_of(n.answer) or NO_ANSWER
            for n in nodes
        ]
        for nodes in by_round.values()
    ]
    data, stacked = _flow_bars(_flow_series(trace), labels, keys_by_round)
    bottoms = [sum(n for _, n in column.values()) for column in stacked]
    outvoted, annotations = _lost_annotations(trace, list(by_round), labels, bottoms)
    if labels:
        final = _final_annotation(trace, labels, keys_by_round, stacked)
        if outvoted:  # lost by the final answer itself (e.g. a vote): said in its own note
            final["text"] += "<br>✗ a correct answer in this round was outvoted"
        annotations.insert(0, final)
    layout = go.Layout(
        barmode="stack",
        height=360,
        margin={"l": 40, "r": 10, "t": 40, "b": 40},
        plot_bgcolor="white",
        paper_bgcolor="white",
        font=FONT,
        bargap=0.35,
        legend={"title": {"text": "answers"}, "traceorder": "normal"},
        xaxis={"type": "category", "showgrid": False, "categoryorder": "array",
               "categoryarray": labels},
        yaxis={"title": {"text": "generations"}, "showgrid": True, "gridcolor": "#F1F5F9",
               "zeroline": False, "rangemode": "tozero",
               "range": [0, max(bottoms, default=1) * 1.55 + 1]},
        annotations=annotations,
        uirevision=trace.id,
    )
    return go.Figure(data=data, layout=layout)


def _flow_series(trace: Trace) -> list[tuple[str, str, str, bool]]:
    """(answer key, legend name, colour, correct) per bar series: the answer clusters,
    biggest first, then no answer, failed and running."""
    series = [
        (key, answer_label(nodes[0], len(nodes)), PALETTE[i % len(PALETTE)],
         nodes[0].correct is True)
        for i, (key, nodes) in enumerate(answer_groups(trace))
    ]
    return series + [
        (NO_ANSWER, "no answer", NO_ANSWER_COLOR, False),
        (FAILED, "failed", FAILED_COLOR, False),
        (RUNNING, "running", RUNNING_COLOR, False),
    ]


def _flow_bars(
    series: list[tuple[str, str, str, bool]],
    labels: list[str],
    keys_by_round: list[list[str]],
) -> tuple[list[go.Bar], list[dict[str, tuple[float, int]]]]:
    """One bar trace per series that has any node, and per round where each key's segment
    sits in the stack: key -> (its middle, its count)."""
    data = []
    stacked: list[dict[str, tuple[float, int]]] = [{} for _ in labels]
    bottoms = [0] * len(labels)
    totals = [len(keys) for keys in keys_by_round]
    for key, name, color, correct in series:
        counts = [keys.count(key) for keys in keys_by_round]
        if not any(counts):
            continue
        for i, count in enumerate(counts):
            stacked[i][key] = (bottoms[i] + count / 2, count)
            bottoms[i] += count
        data.append(go.Bar(
            x=labels,
            y=counts,
            name=name,
            marker={"color": color,
                    "line": {"color": CORRECT_COLOR if correct else "white",
                             "width": 2.5 if correct else 0.5}},
            customdata=totals,
            hovertemplate=f"%{{x}}: {name} — %{{y}} of %{{customdata}}<extra></extra>",
        ))
    return data, stacked


def _lost_annotations(
    trace: Trace, rounds: list[int], labels: list[str], bottoms: list[int]
) -> tuple[bool, list[dict[str, Any]]]:
    """Whether the last round's correct answer was lost by the final answer itself, and a
    note above each earlier round that lost a correct answer."""
    outvoted, notes = False, []
    for round_ in lost_answer_rounds(trace):
        i = rounds.index(round_)
        if i == len(labels) - 1:
            outvoted = True
            continue
        notes.append({
            "x": labels[i], "y": bottoms[i], "yanchor": "bottom", "showarrow": False,
            "text": "✗ correct answer lost after this round",
            "font": {"color": INCORRECT_COLOR, "size": 11},
            "bgcolor": "#FEF2F2", "bordercolor": INCORRECT_COLOR,
        })
    return outvoted, notes


def _final_annotation(
    trace: Trace,
    labels: list[str],
    keys_by_round: list[list[str]],
    stacked: list[dict[str, tuple[float, int]]],
) -> dict[str, Any]:
    """Arrow at the final answer's segment of the last round: who gave it, since when."""
    last = len(labels) - 1
    key = trace_key(trace)(trace.final_answer)
    if trace.status == "running":
        text, y = "running…", sum(n for _, n in stacked[last].values())
        return {"x": labels[last], "y": y, "yanchor": "bottom", "showarrow": False,
                "text": text, "font": {"color": RUNNING_COLOR}}
    if key is None:
        return {"x": labels[last], "y": sum(n for _, n in stacked[last].values()),
                "yanchor": "bottom", "showarrow": False, "text": "no final answer",
                "font": {"color": INCORRECT_COLOR}}
    seen = [i for i, keys in enumerate(keys_by_round) if key in keys]
    verdict = {True: " ✓", False: " ✗"}.get(trace.correct, "")
    shown = answer_text(trace.final_answer, final_tests(trace))
    head = f"final: {esc(shown, LEGEND_ANSWER_CHARS)}{verdict}"
    if not seen:  # e.g. an imported trace whose final answer no node gave
        return {"x": labels[last], "y": sum(n for _, n in stacked[last].values()),
                "yanchor": "bottom", "showarrow": False,
                "text": f"{head}<br>given by no generation shown"}
    # The arrow points at the latest round that gave it: the last one, unless the budget
    # stopped the run after a round whose calls all failed.
    first, source = seen[0], seen[-1]
    middle, count = stacked[source][key]
    text = (
        f"{head}<br>{count} of {len(keys_by_round[source])} in {labels[source]}; "
        f"first seen in {labels[first]} "
        f"({keys_by_round[first].count(key)} of {len(keys_by_round[first])})"
    )
    top = max(sum(n for _, n in column.values()) for column in stacked)
    # The box sits above every bar (the y range leaves room), its arrow down to the segment.
    return {"x": labels[source], "y": middle, "ax": 0, "ay": top * 1.3 + 0.5, "ayref": "y",
            "xanchor": "right" if source else "left", "yanchor": "bottom",
            "showarrow": True, "arrowhead": 2, "text": text, "align": "left",
            "bgcolor": "white", "bordercolor": "#94A3B8", "font": {"size": 11}}
