"""Command line: python -m pdr_core run | list | show | export | import | delete | eval.

Only a consumer of the library: every command is a few calls into pdr_core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
from collections.abc import Awaitable, Sequence
from pathlib import Path

from pdr_core.cli.code import NOT_RUN, add_code_flags, allowed, code_problem
from pdr_core.cli.methods import (
    add_method_flags,
    add_sweep_flags,
    method_config,
    named_methods,
    recorded_method,
    sweep_settings,
)
from pdr_core.cli.output import safe_output
from pdr_core.cli.progress import CallProgress, EvalBar, progress_bar
from pdr_core.config import (
    DISTILLS,
    PRESETS,
    ConfigError,
    RunConfig,
    parse_schedule,
)
from pdr_core.evals.benchmarks import NAMES as BENCHMARK_NAMES
from pdr_core.evals.problems import DatasetError
from pdr_core.evals.spec import EVAL_PRESETS
from pdr_core.fold import Tee
from pdr_core.heap import freeze_startup_objects
from pdr_core.prompts import PromptSet, TemplateError
from pdr_core.providers import (
    DEFAULT_MAX_IN_FLIGHT,
    EndpointRequest,
    EndpointSettings,
    ProviderError,
    choose_endpoint,
    resolve_provider,
)
from pdr_core.render.textfmt import json_safe
from pdr_core.run.api import Method
from pdr_core.run.methods import check_question, fork, fork_config, resume, run
from pdr_core.run.registry import method_registry, planned_calls
from pdr_core.store import Store, StoreError
from pdr_core.tasks import code_task
from pdr_core.trace import Trace, TraceError
from pdr_core.trace_import import MAX_IMPORT_BYTES, trace_from_json

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
LOCAL_HELP = ("run on the local model: the bundled SmolLM2 (or $PDR_LOCAL_MODEL), or the GGUF "
              "chat model file given")


def _config(args: argparse.Namespace, model: str, base_url: str) -> RunConfig:
    if args.preset == "paper":  # the paper's example schedule, 8, 4, 1
        args.method, args.depth = "pdr", 3
        args.schedule = args.schedule or ",".join(map(str, PRESETS["paper"]["width_schedule"]))
    return RunConfig(
        **method_config(args),
        width_schedule=parse_schedule(args.schedule) if args.schedule else None,
        max_tokens=args.max_tokens,
        workspace_tokens=args.workspace_tokens,
        distill_max_tokens=args.distill_max_tokens,
        total_budget=args.total_budget,
        temperature=args.temperature,
        seed=args.seed,
        concurrency=args.concurrency,
        model=model,
        base_url=base_url,
    )


def _check_out(path: str | None) -> None:
    """Refuse an --out that cannot be written before any call is paid for."""
    if path is None:
        return
    folder = Path(path).resolve().parent
    if not folder.is_dir() or not os.access(folder, os.W_OK) or Path(path).is_dir():
        raise ConfigError("out", path, "a file in an existing folder this user can write to")


def _question(args: argparse.Namespace) -> str:
    """The question: the argument, or the file --question-file names ('-': standard input),
    for questions too long for a command line."""
    given = [name for name, value in (("a question argument", args.question),
                                      ("--question-file", args.question_file))
             if value is not None]
    if len(given) != 1:
        raise ConfigError("question", " and ".join(given) or "none",
                          "either the question as an argument or --question-file PATH "
                          "('-' for standard input), one of them")
    source = args.question_file or args.question
    if args.question_file is None and source != "-":
        return source
    try:
        if source == "-":
            return sys.stdin.buffer.read().decode("utf-8")
        return Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("question-file", source,
                          f"a file this user can read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError("question-file", source, "UTF-8 text") from None


def cmd_run(args: argparse.Namespace, store: Store) -> int:
    problem = code_problem(args)
    args.question = problem.question if problem is not None else _question(args)
    task = code_task(problem, allowed(args)) if problem is not None else None
    check_question(args.question)
    store.check_writable()  # before a model is loaded or an endpoint called
    _check_out(args.out)
    settings = _endpoint(args)
    provider = resolve_provider(settings, memory=store)
    config = _config(args, provider.model, provider.base_url)
    if settings.uses_local:
        print(f"using the local model {provider.describe()}", file=sys.stderr)
    bar = CallProgress(planned_calls(config))
    try:
        trace = asyncio.run(_settled(provider, run(args.question, config, provider,
                                                   Tee(store.writer(), bar),
                                                   reference=args.answer, task=task)))
    except KeyboardInterrupt:
        print("interrupted: the run is kept as interrupted in the store", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        bar.close()
    if task is not None and not task.code.executor.allowed:
        print(NOT_RUN, file=sys.stderr)
    return _finish(trace, args)


async def _settled(provider: object, work: Awaitable[Trace]) -> Trace:
    """`work`, then what the provider is still learning about the endpoint (kept in the
    store for the next process), once the run is done and stored."""
    trace = await work
    settle = getattr(provider, "settle", None)
    if settle is not None:
        await settle()
    return trace


def _print_result(trace: Trace) -> None:
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


def cmd_list(args: argparse.Namespace, store: Store) -> int:
    runs = store.list_runs(limit=args.limit, method=args.method, status=args.status,
                           text=args.search)
    for r in runs:
        question = " ".join(r.question.split())
        question = question[:47] + "..." if len(question) > 50 else question
        correct = {True: "right", False: "wrong", None: "-"}[r.correct]
        print(f"{r.id}  {r.created_at[:19]}  {r.status:<11} {r.method:<6} "
              f"{str(r.final_answer)[:12]:<12} {correct:<5} b_seq={r.b_seq:<7} {question}")
    if not runs:
        print(f"no runs in {store.path}", file=sys.stderr)
    return 0


def cmd_show(args: argparse.Namespace, store: Store) -> int:
    trace = store.get_trace(store.resolve_id(args.run_id))
    c = trace.config
    print(f"run {trace.id} ({trace.status}) {c.get('method')} schedule "
          f"{c.get('width_schedule')} distill {c.get('distill')} model {c.get('model')}")
    print(f"question: {trace.question}")
    for n in trace.nodes:
        tail = f"answer={n.answer}" if n.status == "ok" else f"{n.status}: {n.error or ''}"
        if n.status == "running":  # a run of another machine, or one that is still going
            tail = f"running: no answer yet (started {(n.started_at or '?')[:19]})"
        print(f"  {n.id:<16} parents={','.join(n.parent_ids) or '-':<30} "
              f"tokens={n.tokens:<6} {tail}")
    _print_result(trace)
    return 0


def cmd_export(args: argparse.Namespace, store: Store) -> int:
    trace = store.get_trace(store.resolve_id(args.run_id))
    if args.format == "html":
        # Imported here: the report pulls in plotly, which the other commands never need.
        from pdr_core.render.report import write_report

        # A report is megabytes (plotly.js is inline): a file, never stdout.
        out = write_report(trace, args.out or f"{trace.id}.html")
        print(f"wrote {out}", file=sys.stderr)
        return 0
    text = trace.to_json()
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(json_safe(text))  # the same JSON, nothing a terminal obeys
    return 0


def cmd_import(args: argparse.Namespace, store: Store) -> int:
    """Import each file; a refused one is named and the rest are still imported."""
    refused = 0
    bar = progress_bar(len(args.files), "files") if len(args.files) > 1 else None

    def say(text: str, stream) -> None:
        if bar is None:
            print(text, file=stream)
        else:
            bar.write(text, file=stream)  # above the bar, which stays on the last line

    for name in args.files:
        try:
            say(_import_one(Path(name), store), sys.stdout)
        except TraceError as exc:
            refused += 1
            say(f"error: {name}: {exc}", sys.stderr)
        if bar is not None:
            bar.set_postfix_str(f"refused {refused}", refresh=False)
            bar.update(1)
    if bar is not None:
        bar.close()
    if refused and len(args.files) > 1:
        print(f"error: {refused} of {len(args.files)} files refused (named above); the "
              "others were imported", file=sys.stderr)
    return EXIT_USAGE if refused else 0


def _import_one(path: Path, store: Store) -> str:
    try:
        size = path.stat().st_size
        # Refused by size before it is read: an oversized file never reaches memory.
        if size > MAX_IMPORT_BYTES:
            raise TraceError(f"file is {size / 1e6:.0f} MB; traces over "
                             f"{MAX_IMPORT_BYTES // 2**20} MiB are refused")
        data = path.read_bytes()
    except OSError as exc:
        raise TraceError(f"cannot read {path}: {exc.strerror}") from None
    return store.import_trace(trace_from_json(data))


def cmd_delete(args: argparse.Namespace, store: Store) -> int:
    run_id = store.resolve_id(args.run_id)
    store.delete_run(run_id)
    print(f"deleted {run_id}", file=sys.stderr)
    return 0


def _endpoint(args: argparse.Namespace, config: dict | None = None) -> EndpointSettings:
    """The endpoint, model and key of a command under the one rule of
    `pdr_core.providers.endpoints`; `config` is the run a resume or fork continues."""
    key = None
    if args.api_key_env:
        key = os.environ.get(args.api_key_env)
        if not key:
            raise ConfigError("api-key-env", args.api_key_env,
                              "the name of a set environment variable holding the key for "
                              "--base-url")
    given = {"base_url": args.base_url, "model": args.model, "api_key": key,
             "local": args.local is not None, "local_model": args.local or None,
             "timeout": args.timeout, "max_retries": args.max_retries}
    if config is None:
        return choose_endpoint(EndpointRequest(**given))
    return choose_endpoint(EndpointRequest.for_run(
        config, use_recorded=not (args.base_url or args.local is not None),
        trust_recorded=args.trust_recorded_endpoint, **given))


def _provider_for(args: argparse.Namespace, config: dict, store: Store):
    """The run's own endpoint unless flags name another; says which on stderr."""
    settings = _endpoint(args, config)
    print(f"calling {settings.describe()}", file=sys.stderr)
    return resolve_provider(settings, memory=store)


def cmd_resume(args: argparse.Namespace, store: Store) -> int:
    run_id = store.resolve_id(args.run_id)
    trace = store.get_trace(run_id)
    if trace.status == "running":
        print(f"error: run {run_id} is still running in another process", file=sys.stderr)
        return EXIT_FAILED
    provider = _provider_for(args, trace.config, store)
    done = sum(1 for n in trace.nodes if n.status == "ok" and n.call)
    print(f"resuming {run_id}: {done} finished call(s) kept", file=sys.stderr)
    config = trace.run_config
    bar = CallProgress(planned_calls(config), initial=done)
    try:
        trace = asyncio.run(resume(trace, store.events(run_id), provider,
                                   Tee(store.resume_writer(run_id), bar), allowed(args)))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        bar.close()
    return _finish(trace, args)


def cmd_baseline(args: argparse.Namespace, store: Store) -> int:
    """A single pass at the run's B_seq, on the run's own endpoint; prints the new run."""
    from pdr_core.run.baseline import BASELINE_TAG, baseline_config, baseline_name

    source = store.get_trace(store.resolve_id(args.run_id))
    config, note = baseline_config(source, args.context_tokens)
    provider = _provider_for(args, source.config, store)
    print(f"single pass at B_seq {source.budget.b_seq:,} of run {source.id}"
          + (f"; {note}" if note else ""), file=sys.stderr)
    writer = store.writer(name=baseline_name(source.id), tags=(BASELINE_TAG,))
    trace = asyncio.run(run(source.question, config, provider, writer,
                            reference=source.reference_answer))
    return _finish(trace, args)


def cmd_fork(args: argparse.Namespace, store: Store) -> int:
    parent = store.get_trace(store.resolve_id(args.run_id))
    if args.node not in {n.id for n in parent.nodes}:
        ids = ", ".join(n.id for n in parent.nodes)
        raise ConfigError("node", args.node, f"a node of run {parent.id}: {ids}")
    prompts = None
    if args.prompts:
        templates = json.loads(Path(args.prompts).read_text(encoding="utf-8"))
        if not isinstance(templates, dict):
            raise TemplateError(f"{args.prompts} must hold a JSON object of templates")
        prompts = PromptSet.from_dict(
            {**parent.run_config.prompts.to_dict(), **templates})
    config = fork_config(parent, args.node, args.width, args.depth, args.max_tokens, prompts)
    messages = None
    if args.message is not None:
        messages = [dict(m) for m in parent.node(args.node).messages]
        if not messages:
            raise ConfigError("message", args.message,
                              f"a node with messages; {args.node} made no call")
        messages[-1]["content"] = args.message
    provider = _provider_for(args, parent.config, store)
    bar = CallProgress(planned_calls(config))
    sink = Tee(store.writer(name=f"fork of {parent.id} at {args.node}"), bar)
    try:
        trace = asyncio.run(fork(parent, args.node, provider, sink, config, messages,
                                 execute=allowed(args)))
    finally:
        bar.close()
    reused = sum(1 for n in trace.nodes if n.reused and n.call)
    print(f"fork of {parent.id} at {args.node}: {reused} call(s) reused", file=sys.stderr)
    return _finish(trace, args)


def _finish(trace: Trace, args: argparse.Namespace) -> int:
    if getattr(args, "out", None):
        Path(args.out).write_text(trace.to_json(), encoding="utf-8")
    _print_result(trace)
    if trace.status != "completed":
        print(f"error: run {trace.status}: {trace.error}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def cmd_eval(args: argparse.Namespace, store: Store) -> int:
    # Imported here: evaluations pull in plotly, which the other commands never need.
    from pdr_core.code.problems import load_code_dataset
    from pdr_core.evals.datasets import load_dataset_spec
    from pdr_core.evals.export import summary_text, write_outputs
    from pdr_core.evals.records import create_evaluation
    from pdr_core.evals.results import summarize
    from pdr_core.evals.run import run_evaluation
    from pdr_core.evals.spec import (
        EvalError,
        EvalSpec,
        eval_preset,
        parse_int_list,
        parse_methods,
    )

    if args.concurrency < 1:
        raise ConfigError("concurrency", args.concurrency,
                          "a whole number of runs in flight at once, at least 1")
    try:
        code = load_code_dataset(args.dataset)
        problems = (code if code is not None else load_dataset_spec(args.dataset))[: args.limit]
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    provider = resolve_provider(_endpoint(args), memory=store)
    preset = eval_preset(args.preset) if args.preset else None
    methods = preset.methods if preset else parse_methods(args.methods)
    spec = EvalSpec(
        dataset=args.dataset,
        methods=methods,
        method_settings=sweep_settings(args, methods),
        widths=parse_int_list(args.width, "width"),
        depths=parse_int_list(args.depth, "depth"),
        max_tokens=parse_int_list(args.max_tokens, "max_tokens"),
        distill=args.distill, k=args.k, workspace_tokens=args.workspace_tokens,
        temperature=args.temperature, seed=args.seed, model=provider.model,
        base_url=provider.base_url, name=args.name or "",
        stop_when_agree=args.stop_when_agree,
        execute_code=code is not None and allowed(args),
        matched_bseq=args.matched_bseq or bool(preset and preset.matched_bseq),
    )
    try:
        evaluation = create_evaluation(store, spec, problems, args.eval_id)
    except EvalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"evaluation {evaluation.id}: {len(evaluation.cells())} runs over "
          f"{len(problems)} problems; resume with --eval-id {evaluation.id}", file=sys.stderr)

    bar = EvalBar()
    try:
        rows = asyncio.run(run_evaluation(store, evaluation, provider, args.concurrency,
                                             bar))
    except EvalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"interrupted: resume with --eval-id {evaluation.id}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        bar.close()
    summary = summarize(rows)
    for path in write_outputs(args.out, evaluation, rows, summary):
        print(f"wrote {path}", file=sys.stderr)
    print(summary_text(summary, "pass@1" if code is not None else "accuracy"))
    if code is not None and not spec.execute_code:
        print(NOT_RUN, file=sys.stderr)
    failed = sum(s.failed for s in summary)
    if failed:
        print(f"error: {failed} run(s) failed (reported as failed, not graded); rerun with "
              f"--eval-id {evaluation.id} to retry them", file=sys.stderr)
        return EXIT_FAILED
    return 0


KEY_ENV_HELP = ("name of an environment variable holding the key for --base-url "
                "(OPENAI_API_KEY goes only to $OPENAI_BASE_URL, else to OpenAI)")


def _endpoint_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base-url", help="OpenAI-compatible endpoint (else the run's own)")
    p.add_argument("--model", help="model name (else the run's own)")
    p.add_argument("--api-key-env", metavar="NAME", help=KEY_ENV_HELP)
    p.add_argument("--local", nargs="?", const="", default=None, metavar="GGUF",
                   help=LOCAL_HELP)
    p.add_argument("--trust-recorded-endpoint", action="store_true",
                   help="send the configured key to the run's recorded endpoint when it is "
                        "not the configured one (e.g. an imported run)")
    p.add_argument("--out", help="also write the trace JSON here")
    _call_limit_flags(p)


def _call_limit_flags(p: argparse.ArgumentParser) -> None:
    # Strings: resolve_provider checks them, with the environment variables, in one place.
    p.add_argument("--timeout", metavar="SECONDS",
                   help="how long one try of a call may take (else $PDR_TIMEOUT; default 600)")
    p.add_argument("--max-retries", metavar="N",
                   help="tries of a failed call after the first (else $PDR_MAX_RETRIES; "
                        "default 2)")


def build_parser(extra: Sequence[Method] = ()) -> argparse.ArgumentParser:
    """The parser; `extra`: plugin methods named by reference, whose settings get flags."""
    parser = argparse.ArgumentParser(
        prog="python -m pdr_core",
        description="Run Parallel-Distill-Refine reasoning and inspect the stored runs.",
    )
    db_help = "run store file (default: $PDR_DB, else runs.sqlite in the user data folder)"
    parser.add_argument("--db", dest="db_top", help=db_help)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", help=db_help)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", parents=[common], help="run one question")
    p.add_argument("question", nargs="?",
                   help="the question ('-': read it from standard input)")
    p.add_argument("--question-file", metavar="PATH",
                   help="read the question from this file ('-': standard input)")
    p.add_argument("--answer", help="reference answer, to mark correctness")
    add_method_flags(p, extra)  # --method and every method's declared settings
    p.add_argument("--schedule", help="explicit widths per round, e.g. 8,4,1 (pdr only)")
    p.add_argument("--preset", choices=tuple(PRESETS), default="small",
                   help="paper: pdr with the paper's schedule 8,4,1; small (default): the "
                        "flags as given, sized for the bundled model")
    p.add_argument("--max-tokens", type=int, default=1024, help="per-call output budget")
    p.add_argument("--workspace-tokens", type=int, default=512, help="workspace bound kappa")
    p.add_argument("--distill-max-tokens", type=int,
                   help="output budget of a summary call (default: --max-tokens); its text "
                        "is then cut to kappa")
    p.add_argument("--total-budget", type=int, help="cap on B_total")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--concurrency", type=int,
                   help="calls in flight at once (default: the widest round's, so each "
                        f"round goes out as one wave, at most {DEFAULT_MAX_IN_FLIGHT})")
    p.add_argument("--base-url", help="OpenAI-compatible endpoint (else $OPENAI_BASE_URL)")
    p.add_argument("--model", help="model name (else $PDR_MODEL)")
    p.add_argument("--api-key-env", metavar="NAME", help=KEY_ENV_HELP)
    p.add_argument("--local", nargs="?", const="", default=None, metavar="GGUF",
                   help=LOCAL_HELP)
    p.add_argument("--out", help="also write the trace JSON here")
    add_code_flags(p, problems=True)
    _call_limit_flags(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("list", parents=[common], help="stored runs, newest first")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--method", type=recorded_method,
                   help="only runs of this method (a name, or a plugin's name or "
                        "package.module:function)")
    p.add_argument("--status", choices=("running", "completed", "failed", "interrupted"))
    p.add_argument("--search", help="text in the question, name, tags or id")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", parents=[common], help="one run's nodes and result")
    p.add_argument("run_id")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("export", parents=[common],
                       help="write a run as pdr-trace/1 JSON or a standalone HTML report")
    p.add_argument("run_id")
    p.add_argument("--format", choices=("json", "html"), default="json")
    p.add_argument("--out", help="file to write (json: default stdout; html: RUN_ID.html)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import", parents=[common],
                       help="store pdr-trace/1 files as runs (one run id per line)")
    p.add_argument("files", nargs="+", metavar="file")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("resume", parents=[common],
                       help="continue an interrupted run without repeating finished calls")
    p.add_argument("run_id")
    _endpoint_flags(p)
    add_code_flags(p)
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("fork", parents=[common],
                       help="re-run a run from one node on, reusing everything upstream")
    p.add_argument("run_id")
    p.add_argument("--node", required=True, help="the node to call again, e.g. r2-distill-0")
    p.add_argument("--prompts", help="JSON file of templates to use from that node on")
    p.add_argument("--message", help="new text of that node's last message")
    p.add_argument("--width", type=int, help="width of the remaining rounds")
    p.add_argument("--depth", type=int, help="depth of the new run")
    p.add_argument("--max-tokens", type=int, help="per-call budget of the new calls")
    _endpoint_flags(p)
    add_code_flags(p)
    p.set_defaults(func=cmd_fork)

    p = sub.add_parser("baseline", parents=[common],
                       help="a single pass whose output budget is a run's B_seq (matched "
                            "budget); prints the new run's id")
    p.add_argument("run_id")
    p.add_argument("--context-tokens", type=int,
                   help="the model's context size: the budget is capped to fit it, noted")
    _endpoint_flags(p)
    p.set_defaults(func=cmd_baseline)

    p = sub.add_parser("eval", parents=[common],
                       help="run methods x settings over a problem set; resumable")
    p.add_argument("dataset", help=f"a built-in benchmark ({', '.join(BENCHMARK_NAMES)}: "
                   "shipped, no network), a JSONL path, gen:KIND:N[:DIFFICULTY]"
                   "[:seed=S] (KIND arith, linear or mod) or hf:NAME[:SPLIT]")
    p.add_argument("--methods", default="single,vote,sr,pdr",
                   help=f"comma-separated, of {', '.join(method_registry())}, or a "
                        "plugin's package.module:function")
    p.add_argument("--preset", choices=list(EVAL_PRESETS),
                   help="a named sweep that sets --methods (and --matched-bseq): "
                        + "; ".join(f"{n}: {e.label}" for n, e in EVAL_PRESETS.items()))
    p.add_argument("--width", default="4", help="widths to sweep, e.g. 4,8")
    p.add_argument("--depth", default="2", help="depths to sweep, e.g. 2,3")
    p.add_argument("--max-tokens", default="1024", help="per-call budgets to sweep")
    p.add_argument("--distill", choices=DISTILLS, default="summary")
    p.add_argument("--k", type=int, default=2, help="drafts selected by top-k / random-k")
    p.add_argument("--workspace-tokens", type=int, default=512, help="workspace bound kappa")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stop-when-agree", type=float, metavar="SHARE",
                   help="pdr, sr, rsa arms stop once a round's answers agree at least this "
                        "much; results.csv says what it saved")
    p.add_argument("--matched-bseq", action="store_true",
                   help="add, per problem and pdr/sr arm, a single pass whose max tokens is "
                        "that arm's B_seq on the problem (the paper's matched comparison)")
    p.add_argument("--concurrency", type=int, default=4, help="runs in flight at once")
    p.add_argument("--limit", type=int, help="only the first N problems")
    p.add_argument("--eval-id", help="resume this evaluation (default: a new id)")
    p.add_argument("--name", help="a name for the evaluation, also tagged on its runs")
    p.add_argument("--base-url", help="OpenAI-compatible endpoint (else $OPENAI_BASE_URL)")
    p.add_argument("--model", help="model name (else $PDR_MODEL)")
    p.add_argument("--api-key-env", metavar="NAME", help=KEY_ENV_HELP)
    p.add_argument("--local", nargs="?", const="", default=None, metavar="GGUF",
                   help=LOCAL_HELP)
    p.add_argument("--out", required=True, help="folder for results.csv and summary.csv")
    _call_limit_flags(p)
    add_code_flags(p)
    add_sweep_flags(p, extra)  # every method's other declared settings, swept
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("delete", parents=[common], help="delete a stored run")
    p.add_argument("run_id")
    p.set_defaults(func=cmd_delete)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    with safe_output():
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    try:
        extra = named_methods(sys.argv[1:] if argv is None else argv)
    except ConfigError as exc:  # a --method module:function that cannot be loaded
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    args = build_parser(extra).parse_args(argv)
    freeze_startup_objects()
    db = args.db or args.db_top
    try:
        store = Store(db)
        if store.damage is not None:  # reads go on, as far as they can; writes are refused
            print(f"warning: run store {store.path} is damaged ({store.damage}): reading "
                  "only", file=sys.stderr)
        return args.func(args, store)
    except (ConfigError, TemplateError, TraceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ProviderError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except sqlite3.Error as exc:  # the store turns these into StoreError; this is the net
        print(f"error: run store {db or 'default'}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:
        # The reader went away (`list | head`): what it read was all it wanted. Point stdout
        # at nothing, so that the flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0

