"""An evaluation written out: results.csv, summary.csv, per_problem.csv, evaluation.json and
the plain-text summary the command line prints."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pdr_core.evals.results import ResultRow, SummaryRow, per_problem_table
from pdr_core.evals.spec import (
    Evaluation,
)

FORMAT = "pdr-eval/1"


RESULT_COLUMNS = ("problem_id", "method", "width", "depth", "max_tokens", "correct", "oracle",
                  "b_seq", "b_total", "rounds_saved", "tokens_saved", "run_id", "status",
                  "matched", "settings")


SUMMARY_COLUMNS = ("method", "width", "depth", "max_tokens", "n", "accuracy", "ci_low",
                   "ci_high", "mean_b_seq", "mean_b_total", "oracle_accuracy", "tokens_saved",
                   "matched", "settings")


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, float):
        return round(value, 6)
    return value


def _csv(records: Iterable[dict[str, Any]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for record in records:
        writer.writerow([_cell(record[c]) for c in columns])
    return buffer.getvalue()


def _record(row: ResultRow | SummaryRow) -> dict[str, Any]:
    """The row's fields, its arm's own method settings as `settings` (a JSON object, empty
    when the arm sets none)."""
    own = dict(row.own)
    return {**asdict(row), "own": own, "settings": json.dumps(own) if own else ""}


def results_csv(rows: Sequence[ResultRow]) -> str:
    """One line per run: RESULT_COLUMNS."""
    return _csv((_record(r) for r in rows), RESULT_COLUMNS)


def summary_csv(summary: Sequence[SummaryRow]) -> str:
    """One line per method and setting: SUMMARY_COLUMNS."""
    return _csv((_record(s) for s in summary), SUMMARY_COLUMNS)


def per_problem_csv(rows: Sequence[ResultRow]) -> str:
    """One line per problem, one column per arm: right, wrong, "wrong (a draft was right)"
    (the oracle passed where the final answer did not), or the run's state."""
    table = per_problem_table(rows)
    columns = list(dict.fromkeys(key for entry in table for key in entry))
    return _csv(({c: entry.get(c, "") for c in columns} for entry in table), columns)


def report_json(evaluation: Evaluation, rows: Sequence[ResultRow],
                summary: Sequence[SummaryRow]) -> str:
    """The whole evaluation as one JSON document (format pdr-eval/1)."""
    return json.dumps({
        "format": FORMAT,
        "id": evaluation.id,
        "name": evaluation.spec.name,
        "created_at": evaluation.created_at,
        "spec": evaluation.spec.to_dict(),
        "dataset_hash": evaluation.dataset_hash,
        "problems": len(evaluation.problems),
        "summary": [_record(s) for s in summary],
        "results": [_record(r) for r in rows],
    }, indent=2, ensure_ascii=False)


def write_outputs(out_dir: str | Path, evaluation: Evaluation, rows: Sequence[ResultRow],
                  summary: Sequence[SummaryRow]) -> list[Path]:
    """results.csv, summary.csv, per_problem.csv and evaluation.json in `out_dir`; returns
    their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "results.csv": results_csv(rows),
        "summary.csv": summary_csv(summary),
        "per_problem.csv": per_problem_csv(rows),
        "evaluation.json": report_json(evaluation, rows, summary),
    }
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    return [out / name for name in files]


def summary_header(metric: str = "accuracy") -> tuple[str, ...]:
    """The titles of `summary_cells`; `metric` names the accuracy column (pass@1 for code)."""
    return ("arm", "n", metric, "95% CI", "mean B_seq", "mean B_total", "oracle", "failed")


def summary_cells(s: SummaryRow) -> tuple[str, ...]:
    """One arm's summary as text: shares as percentages (one decimal), means rounded."""
    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.1%}"

    ci = "-" if s.ci_low is None else f"{s.ci_low:.1%}-{s.ci_high:.1%}"
    return (s.label, str(s.n), pct(s.accuracy), ci,
            "-" if s.mean_b_seq is None else f"{s.mean_b_seq:,.0f}",
            "-" if s.mean_b_total is None else f"{s.mean_b_total:,.0f}",
            pct(s.oracle_accuracy), str(s.failed))


def summary_text(summary: Sequence[SummaryRow], metric: str = "accuracy") -> str:
    """The summary as an aligned plain-text table (the command line prints it)."""
    header = summary_header(metric)
    lines = [header, *(summary_cells(s) for s in summary)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True))
                     .rstrip() for line in lines)
