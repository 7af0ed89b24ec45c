"""How a command ends: its exit status, and the result of a run it made or read."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pdr_core.trace import Trace

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def print_result(trace: Trace) -> None:
    budget = trace.budget
    lines = [f"answer: {trace.final_answer}"]
    if trace.reference_answer is not None or trace.task is not None:
        lines.append(f"correct: {str(trace.correct).lower()}")
    if trace.stop_reason:
        lines.append(f"stopped: {trace.stop_reason}")
    if trace.final_selection:
        lines.append(f"selection: {trace.final_selection}")
    lines += [f"b_seq: {budget.b_seq}", f"b_total: {budget.b_total}",
              f"calls: {budget.calls}", f"run: {trace.id}"]
    print("\n".join(lines))


def finish(trace: Trace, args: argparse.Namespace) -> int:
    """Write --out, print the result; the exit status says whether the run completed."""
    if getattr(args, "out", None):
        Path(args.out).write_text(trace.to_json(), encoding="utf-8")
    print_result(trace)
    if trace.status != "completed":
        print(f"error: run {trace.status}: {trace.error}", file=sys.stderr)
        return EXIT_FAILED
    return 0
