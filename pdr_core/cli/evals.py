"""The `eval` command: methods x settings over a problem set, resumable, into CSV files."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from pdr_core.cli.code import NOT_RUN, add_code_flags, allowed
from pdr_core.cli.endpoint import connect, endpoint, endpoint_flags
from pdr_core.cli.knobs import EVAL_KNOBS, add_knob_flags
from pdr_core.cli.methods import add_sweep_flags, sweep_settings
from pdr_core.cli.outcome import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE
from pdr_core.cli.progress import EvalBar
from pdr_core.config import ConfigError
from pdr_core.providers.base import DEFAULT_MAX_IN_FLIGHT
from pdr_core.run.api import Method
from pdr_core.run.registry import method_registry
from pdr_core.store import Store


def _spec(args: argparse.Namespace, provider, code: bool):
    from pdr_core.evals.spec import EvalSpec, eval_preset, parse_int_list, parse_methods

    preset = eval_preset(args.preset) if args.preset else None
    methods = preset.methods if preset else parse_methods(args.methods)
    return EvalSpec(
        dataset=args.dataset, methods=methods,
        method_settings=sweep_settings(args, methods),
        widths=parse_int_list(args.width, "width"),
        depths=parse_int_list(args.depth, "depth"),
        max_tokens=parse_int_list(args.max_tokens, "max_tokens"),
        distill=args.distill, k=args.k, workspace_tokens=args.workspace_tokens,
        temperature=args.temperature, seed=args.seed, model=provider.model,
        base_url=provider.base_url, name=args.name or "",
        run_concurrency=args.run_concurrency,
        stop_when_agree=args.stop_when_agree,
        execute_code=code and allowed(args),
        matched_bseq=args.matched_bseq or bool(preset and preset.matched_bseq),
    )


def cmd_eval(args: argparse.Namespace, store: Store) -> int:
    # Imported here: evaluations pull in their datasets and statistics, which the other
    # commands never need.
    from pdr_core.code.problems import load_code_dataset
    from pdr_core.evals.datasets import load_dataset_spec
    from pdr_core.evals.problems import DatasetError
    from pdr_core.evals.spec import EvalError

    if args.concurrency < 1:
        raise ConfigError("concurrency", args.concurrency,
                          "a whole number of runs in flight at once, at least 1")
    try:
        code = load_code_dataset(args.dataset)
        problems = (code if code is not None else load_dataset_spec(args.dataset))[: args.limit]
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    provider = connect(endpoint(args), store)
    spec = _spec(args, provider, code is not None)
    try:
        return _run(args, store, provider, spec, problems, code is not None)
    except EvalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _run(args: argparse.Namespace, store: Store, provider, spec, problems, code: bool) -> int:
    """Create or resume the evaluation, run what is pending, write and print the results."""
    from pdr_core.evals.export import summary_text, write_outputs
    from pdr_core.evals.records import create_evaluation
    from pdr_core.evals.results import summarize
    from pdr_core.evals.run import run_evaluation

    evaluation = create_evaluation(store, spec, problems, args.eval_id)
    print(f"evaluation {evaluation.id}: {len(evaluation.cells())} runs over "
          f"{len(problems)} problems; resume with --eval-id {evaluation.id}", file=sys.stderr)
    bar = EvalBar()
    try:
        rows = asyncio.run(run_evaluation(store, evaluation, provider, args.concurrency, bar))
    except KeyboardInterrupt:
        print(f"interrupted: resume with --eval-id {evaluation.id}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        bar.close()
    summary = summarize(rows)
    for path in write_outputs(args.out, evaluation, rows, summary):
        print(f"wrote {path}", file=sys.stderr)
    print(summary_text(summary, "pass@1" if code else "accuracy"))
    if code and not spec.execute_code:
        print(NOT_RUN, file=sys.stderr)
    failed = sum(s.failed for s in summary)
    if failed:
        print(f"error: {failed} run(s) failed (reported as failed, not graded); rerun with "
              f"--eval-id {evaluation.id} to retry them", file=sys.stderr)
        return EXIT_FAILED
    return 0


def add_eval_parser(sub, common: argparse.ArgumentParser, extra: Sequence[Method] = ()
                    ) -> None:
    """`eval`: the dataset, the sweep, the shared settings, the endpoint, the output folder."""
    from pdr_core.evals.benchmarks import NAMES
    from pdr_core.evals.spec import DEFAULT_METHODS, EVAL_PRESETS, RUNS_AT_ONCE

    p = sub.add_parser("eval", parents=[common],
                       help="run methods x settings over a problem set; resumable")
    p.add_argument("dataset", help=f"a built-in benchmark ({', '.join(NAMES)}: shipped, no "
                   "network), a JSONL path, gen:KIND:N[:DIFFICULTY][:seed=S] (KIND arith, "
                   "linear or mod) or hf:NAME[:SPLIT]")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                   help=f"comma-separated, of {', '.join(method_registry())}, or a "
                        "plugin's package.module:function (default: %(default)s)")
    p.add_argument("--preset", choices=list(EVAL_PRESETS),
                   help="a named sweep that sets --methods (and --matched-bseq): "
                        + "; ".join(f"{n}: {e.label}" for n, e in EVAL_PRESETS.items()))
    add_knob_flags(p, EVAL_KNOBS, sweep=("width", "depth", "max_tokens"))
    p.add_argument("--stop-when-agree", type=float, metavar="SHARE",
                   help="pdr, sr, rsa arms stop once a round's answers agree at least this "
                        "much; results.csv says what it saved")
    p.add_argument("--matched-bseq", action="store_true",
                   help="add, per problem and pdr/sr arm, a single pass whose max tokens is "
                        "that arm's B_seq on the problem (the paper's matched comparison)")
    p.add_argument("--concurrency", type=int, default=RUNS_AT_ONCE,
                   help="runs in flight at once (default: %(default)s)")
    p.add_argument("--run-concurrency", type=int, metavar="N",
                   help="calls in flight within each run (default: its widest round's, so "
                        "each round goes out as one wave, at most "
                        f"{DEFAULT_MAX_IN_FLIGHT})")
    p.add_argument("--limit", type=int, help="only the first N problems")
    p.add_argument("--eval-id", help="resume this evaluation (default: a new id)")
    p.add_argument("--name", help="a name for the evaluation, also tagged on its runs")
    endpoint_flags(p)
    p.add_argument("--out", required=True, help="folder for results.csv and summary.csv")
    add_code_flags(p)
    add_sweep_flags(p, extra)  # every method's other declared settings, swept
    p.set_defaults(func=cmd_eval)
