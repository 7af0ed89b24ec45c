"""Evaluations, by their old name: everything now lives in `pdr_core.evals`; this module
re-exports its public names so existing imports keep working."""

from pdr_core.evals.estimate import ArmEstimate, estimate
from pdr_core.evals.export import (
    FORMAT,
    RESULT_COLUMNS,
    SUMMARY_COLUMNS,
    report_json,
    results_csv,
    summary_cells,
    summary_csv,
    summary_header,
    summary_text,
    write_outputs,
)
from pdr_core.evals.figure import BUDGETS, METHOD_COLORS, accuracy_figure
from pdr_core.evals.records import (
    EvalSummary,
    create_evaluation,
    ensure_tables,
    list_evaluations,
    load_evaluation,
    new_eval_id,
)
from pdr_core.evals.results import (
    RUN_LINK_SUFFIX,
    ResultRow,
    SummaryRow,
    collect_results,
    compare,
    per_problem_table,
    summarize,
)
from pdr_core.evals.run import EvalJob, pending_cells, run_evaluation
from pdr_core.evals.spec import (
    DEFAULT_METHODS,
    MATCHED_METHODS,
    EvalError,
    EvalProgress,
    EvalSpec,
    Evaluation,
    Setting,
    method_order,
    parse_int_list,
    parse_methods,
)

__all__ = [
    "BUDGETS", "DEFAULT_METHODS", "FORMAT", "MATCHED_METHODS", "METHOD_COLORS",
    "RESULT_COLUMNS", "RUN_LINK_SUFFIX", "SUMMARY_COLUMNS", "ArmEstimate", "EvalError",
    "EvalJob", "EvalProgress", "EvalSpec", "EvalSummary", "Evaluation", "ResultRow", "Setting",
    "SummaryRow", "accuracy_figure", "collect_results", "compare", "create_evaluation",
    "ensure_tables", "estimate", "list_evaluations", "load_evaluation", "method_order",
    "new_eval_id", "parse_int_list", "parse_methods", "pending_cells", "per_problem_table",
    "report_json", "results_csv", "run_evaluation", "summarize", "summary_csv",
    "summary_cells", "summary_header", "summary_text", "write_outputs",
]
