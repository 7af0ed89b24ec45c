"""The Evaluate page's results of one evaluation: progress, counts, accuracy figures,
tables, the paired comparison and the downloads."""

from __future__ import annotations

from dataclasses import asdict

import streamlit as st

from pdr_core.code.problems import is_code_problem
from pdr_core.evals.export import (
    report_json,
    results_csv,
    summary_cells,
    summary_csv,
    summary_header,
)
from pdr_core.evals.figure import accuracy_figure, metric_title
from pdr_core.evals.results import (
    RUN_LINK_SUFFIX,
    ResultRow,
    SummaryRow,
    collect_results,
    compare,
    per_problem_table,
    summarize,
)
from pdr_core.evals.run import EvalJob
from pdr_core.evals.spec import Evaluation
from pdr_core.render.textfmt import inert
from pdr_core.store import Store

ALPHAS = [0.01, 0.05, 0.1]


def render_results(store: Store, evaluation: Evaluation, job: EvalJob | None) -> None:
    """Everything the store holds of `evaluation`, with `job`'s progress while it runs."""
    if job is not None and job.running and job.total:
        eta = "" if job.eta is None else f" · about {job.eta:.0f} s left"
        failed = f" · {job.failed} failed" if job.failed else ""
        st.progress(job.done / job.total, text=f"{job.done} / {job.total} runs{failed}{eta}")
    if job is not None and job.error is not None:
        st.error(inert(f"The evaluation stopped: {job.error}"))
    rows = collect_results(store, evaluation)
    summary = summarize(rows)
    _render_counts(rows)
    code = any(is_code_problem(p) for p in evaluation.problems)
    metric = "pass@1" if code else "accuracy"
    seq, total = st.tabs([f"{metric_title(metric)} vs B_seq",
                          f"{metric_title(metric)} vs B_total"])
    with seq:
        st.plotly_chart(accuracy_figure(summary, "b_seq", metric), key="eval_fig_seq")
    with total:
        st.plotly_chart(accuracy_figure(summary, "b_total", metric), key="eval_fig_total")
    _render_tables(evaluation, rows, summary, metric)
    _render_paired(rows, summary)
    d = st.columns(3)
    d[0].download_button("results.csv", results_csv(rows), f"{evaluation.id}-results.csv",
                         "text/csv", key="eval_dl_results")
    d[1].download_button("summary.csv", summary_csv(summary), f"{evaluation.id}-summary.csv",
                         "text/csv", key="eval_dl_summary")
    d[2].download_button("evaluation.json", report_json(evaluation, rows, summary),
                         f"{evaluation.id}.json", "application/json", key="eval_dl_json")


def _render_counts(rows: list[ResultRow]) -> None:
    states = [r.status for r in rows]
    m = st.columns(4)
    m[0].metric("Completed", states.count("completed"))
    m[1].metric("Failed", states.count("failed") + states.count("interrupted"),
                help="Failed runs are not graded; Resume runs them again.")
    m[2].metric("Running", states.count("running"))
    m[3].metric("Not started", states.count("pending"))


def _render_tables(evaluation: Evaluation, rows: list[ResultRow],
                   summary: list[SummaryRow], metric: str) -> None:
    """Per method and setting, per problem (with links to each run) and every run."""
    # Arm labels name each arm's method, its distill operator, width, depth and max tokens.
    code = metric == "pass@1"
    oracle = ("pass@1: share of problems whose final program passed every test; oracle: "
              "share where any program a run wrote passed, against that final pass" if code
              else "oracle: share of runs where some generation was right")
    st.markdown(f"**Per method and setting** ({oracle})")
    if code and not evaluation.spec.execute_code:
        st.info("Code execution was off for this evaluation: no program ran, so pass@1 "
                "and the oracle are unknown.")
    # Text cells, as the command line prints them: percentages, rounded means, "-" for none.
    st.dataframe([dict(zip(summary_header(metric), summary_cells(s), strict=True))
                  | {"pending": str(s.pending), "tokens saved": f"{s.tokens_saved:,}"}
                  for s in summary], hide_index=True, key="eval_summary_table")
    st.markdown("**Per problem** (each arm's run opens in History)")
    links = {s.label + RUN_LINK_SUFFIX: st.column_config.LinkColumn(
        s.label + RUN_LINK_SUFFIX, display_text="open ↗", help=f"The {s.label} run of this "
        "problem, in History") for s in summary}
    st.dataframe(per_problem_table(rows, run_link=lambda run_id: f"history?run={run_id}"),
                 hide_index=True, key="eval_per_problem", column_config=links)
    with st.expander("Every run"):
        st.dataframe([asdict(r) for r in rows], hide_index=True, key="eval_runs_table")


def _render_paired(rows: list[ResultRow], summary: list[SummaryRow]) -> None:
    """McNemar's test between two arms the person picks (when there are two)."""
    labels = [s.label for s in summary]
    if len(labels) < 2:
        return
    st.markdown("**Paired comparison** (McNemar's exact test on the same problems)")
    p = st.columns(3)
    a = p[0].selectbox("Method A", labels, key="eval_cmp_a")
    b = p[1].selectbox("Method B", labels, index=len(labels) - 1, key="eval_cmp_b")
    alpha = p[2].select_slider("Significance level", ALPHAS, value=0.05, key="eval_alpha")
    result = compare(rows, a, b, alpha)
    (st.success if result.significant else st.info)(result.verdict())
