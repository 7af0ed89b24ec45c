"""The accuracy-against-budget figure of an evaluation."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from pdr_core.evals.results import SummaryRow
from pdr_core.evals.spec import own_text

BUDGETS = {"b_seq": "mean B_seq (tokens on the critical path)",
           "b_total": "mean B_total (tokens of all calls)"}


METHOD_COLORS = {"single": "#4C78A8", "vote": "#F58518", "sr": "#B279A2", "pdr": "#54A24B"}


def metric_title(metric: str) -> str:
    """The metric as a title: "Accuracy"; "pass@1" stays as it is always written."""
    return metric.capitalize() if metric == "accuracy" else metric


def accuracy_figure(summary: Sequence[SummaryRow], budget: str = "b_seq",
                    metric: str = "accuracy") -> go.Figure:
    """Accuracy against mean B_seq or B_total, one line per method (and per value of a
    method's own swept settings), 95% Wilson bars; `metric` names it (pass@1 for code)."""
    if budget not in BUDGETS:
        raise ValueError(f"budget {budget!r}: one of {', '.join(BUDGETS)}")
    figure = go.Figure()
    lines = list(dict.fromkeys(_line(s) for s in summary))
    for line in lines:
        points = sorted((s for s in summary if _line(s) == line and s.n),
                        key=lambda s: getattr(s, f"mean_{budget}"))
        if not points:
            continue
        method = points[0].method
        figure.add_trace(go.Scatter(
            x=[getattr(s, f"mean_{budget}") for s in points],
            y=[s.accuracy for s in points],
            error_y={"type": "data", "symmetric": False,
                     "array": [s.ci_high - s.accuracy for s in points],
                     "arrayminus": [s.accuracy - s.ci_low for s in points]},
            mode="lines+markers",
            name=line,
            marker={"color": METHOD_COLORS.get(method), "size": 9,
                    "symbol": "diamond" if points[0].matched else "circle"},
            line={"color": METHOD_COLORS.get(method),
                  "dash": "dash" if points[0].matched else "solid"},
            text=[s.label for s in points],
            customdata=[[s.n, s.ci_low, s.ci_high] for s in points],
            hovertemplate="%{text}<br>" + metric + " %{y:.1%} (95% CI %{customdata[1]:.1%}"
                          "–%{customdata[2]:.1%}, n=%{customdata[0]})<br>"
                          + budget.replace("b_", "B_") + " %{x:,.0f}<extra></extra>",
        ))
    figure.update_layout(
        title=f"{metric_title(metric)} vs {BUDGETS[budget]}",
        xaxis_title=BUDGETS[budget], yaxis_title=metric,
        yaxis={"range": [-0.02, 1.02], "tickformat": ".0%"},
        legend_title="method", margin={"l": 40, "r": 20, "t": 50, "b": 40},
    )
    return figure


def _line(summary: SummaryRow) -> str:
    """The figure's line of an arm: its method with its own settings' values (arms that
    differ by one are different lines), or the matched single passes of a method."""
    if summary.matched:
        return f"single @ {summary.matched} B_seq"
    return " ".join(filter(None, (summary.method, own_text(summary.own))))
