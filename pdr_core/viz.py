"""Trace -> networkx graph -> plotly figures, by their old name: the figures now live in
`pdr_core.render` (graph, tree, flow, timeline, budget); this module re-exports them.

Figures are built from a handful of plotly traces (one per colour group, never one per
node) so that a width-16, depth-8 run renders quickly. Every string that came from a model
or from an imported trace is escaped before it reaches hover text or legend names, since
plotly renders a subset of HTML there.
"""

from pdr_core.render.budget import budget_table
from pdr_core.render.flow import answer_flow_figure, lost_answer_rounds
from pdr_core.render.graph import (
    CORRECT_COLOR,
    FAILED_COLOR,
    INCORRECT_COLOR,
    PALETTE,
    STAGE_COLORS,
    answer_colors,
    build_graph,
    column_of,
    node_id_from_point,
)
from pdr_core.render.timeline import critical_path, stage_color, timeline_figure, timeline_stages
from pdr_core.render.tree import tree_figure

__all__ = [
    "CORRECT_COLOR", "FAILED_COLOR", "INCORRECT_COLOR", "PALETTE", "STAGE_COLORS",
    "answer_colors", "answer_flow_figure", "budget_table", "build_graph", "column_of",
    "critical_path", "lost_answer_rounds", "node_id_from_point", "stage_color",
    "timeline_figure", "timeline_stages", "tree_figure",
]
