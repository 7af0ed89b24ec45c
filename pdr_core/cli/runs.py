"""The commands that make a run: run (a question or a code problem), and from a stored
run resume, fork and baseline. Each is a few calls into the library."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from pdr_core.cli.code import NOT_RUN, add_code_flags, allowed, code_problem
from pdr_core.cli.endpoint import connect, endpoint, endpoint_flags, provider_for
from pdr_core.cli.knobs import RUN_KNOBS, add_knob_flags
from pdr_core.cli.methods import add_method_flags, method_config
from pdr_core.cli.outcome import EXIT_FAILED, EXIT_INTERRUPTED, finish
from pdr_core.cli.progress import CallProgress
from pdr_core.config import DEFAULT_PRESET, PRESETS, ConfigError, RunConfig, parse_schedule
from pdr_core.fold import Tee
from pdr_core.prompts import PromptSet, TemplateError
from pdr_core.providers.base import DEFAULT_MAX_IN_FLIGHT, settle
from pdr_core.run.api import Method
from pdr_core.run.methods import check_question, fork, fork_config, resume, run
from pdr_core.run.registry import planned_calls
from pdr_core.store import Store
from pdr_core.tasks import code_task
from pdr_core.trace import Trace

Command = Callable[[argparse.Namespace, Store], int]


def _config(args: argparse.Namespace, model: str, base_url: str) -> RunConfig:
    if args.preset == "paper":  # the paper's example schedule, 8, 4, 1
        paper = PRESETS["paper"]
        args.method, args.depth = paper["method"], paper["depth"]
        args.schedule = args.schedule or ",".join(map(str, paper["width_schedule"]))
    # Each of these flags sets the RunConfig field of its name.
    fields = (*RUN_KNOBS, "distill_max_tokens", "total_budget", "concurrency")
    return RunConfig(
        **method_config(args), **{name: getattr(args, name) for name in fields},
        width_schedule=parse_schedule(args.schedule) if args.schedule else None,
        model=model, base_url=base_url,
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


def _settled(provider: object, work: Awaitable[Trace]) -> Trace:
    """Run `work` on a new event loop, then let the provider finish what it is still
    learning about the endpoint (kept in the store for the next process)."""
    async def main() -> Trace:
        trace = await work
        await settle(provider)
        return trace

    return asyncio.run(main())


def cmd_run(args: argparse.Namespace, store: Store) -> int:
    problem = code_problem(args)
    args.question = problem.question if problem is not None else _question(args)
    task = code_task(problem, allowed(args)) if problem is not None else None
    check_question(args.question)
    store.check_writable()  # before a model is loaded or an endpoint called
    _check_out(args.out)
    settings = endpoint(args)
    provider = connect(settings, store)
    config = _config(args, provider.model, provider.base_url)
    if settings.uses_local:
        print(f"using the local model {provider.describe()}", file=sys.stderr)
    bar = CallProgress(planned_calls(config))
    try:
        trace = _settled(provider, run(args.question, config, provider,
                                       Tee(store.writer(), bar),
                                       reference=args.answer, task=task))
    except KeyboardInterrupt:
        print("interrupted: the run is kept as interrupted in the store", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        bar.close()
    if task is not None and not task.code.executor.allowed:
        print(NOT_RUN, file=sys.stderr)
    return finish(trace, args)


def cmd_resume(args: argparse.Namespace, store: Store) -> int:
    run_id = store.resolve_id(args.run_id)
    trace = store.get_trace(run_id)
    if trace.status == "running":
        print(f"error: run {run_id} is still running in another process", file=sys.stderr)
        return EXIT_FAILED
    provider = provider_for(args, trace.config, store)
    done = sum(1 for n in trace.nodes if n.status == "ok" and n.call)
    print(f"resuming {run_id}: {done} finished call(s) kept", file=sys.stderr)
    config = trace.run_config
    bar = CallProgress(planned_calls(config), initial=done)
    try:
        trace = _settled(provider, resume(trace, store.events(run_id), provider,
                                          Tee(store.resume_writer(run_id), bar),
                                          allowed(args)))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        bar.close()
    return finish(trace, args)


def cmd_baseline(args: argparse.Namespace, store: Store) -> int:
    """A single pass at the run's B_seq, on the run's own endpoint; prints the new run."""
    from pdr_core.run.baseline import BASELINE_TAG, baseline_config, baseline_name

    source = store.get_trace(store.resolve_id(args.run_id))
    config, note = baseline_config(source, args.context_tokens)
    provider = provider_for(args, source.config, store)
    print(f"single pass at B_seq {source.budget.b_seq:,} of run {source.id}"
          + (f"; {note}" if note else ""), file=sys.stderr)
    writer = store.writer(name=baseline_name(source.id), tags=(BASELINE_TAG,))
    trace = _settled(provider, run(source.question, config, provider, writer,
                                   reference=source.reference_answer))
    return finish(trace, args)


def _fork_prompts(args: argparse.Namespace, parent: Trace) -> PromptSet | None:
    """The parent's templates with those of --prompts over them; None without it."""
    if not args.prompts:
        return None
    templates = json.loads(Path(args.prompts).read_text(encoding="utf-8"))
    if not isinstance(templates, dict):
        raise TemplateError(f"{args.prompts} must hold a JSON object of templates")
    return PromptSet.from_dict(
        {**parent.run_config.prompts.to_dict(), **templates})


def cmd_fork(args: argparse.Namespace, store: Store) -> int:
    parent = store.get_trace(store.resolve_id(args.run_id))
    if args.node not in {n.id for n in parent.nodes}:
        ids = ", ".join(n.id for n in parent.nodes)
        raise ConfigError("node", args.node, f"a node of run {parent.id}: {ids}")
    config = fork_config(parent, args.node, args.width, args.depth, args.max_tokens,
                         _fork_prompts(args, parent))
    messages = None
    if args.message is not None:
        messages = [dict(m) for m in parent.node(args.node).messages]
        if not messages:
            raise ConfigError("message", args.message,
                              f"a node with messages; {args.node} made no call")
        messages[-1]["content"] = args.message
    provider = provider_for(args, parent.config, store)
    bar = CallProgress(planned_calls(config))
    sink = Tee(store.writer(name=f"fork of {parent.id} at {args.node}"), bar)
    try:
        trace = _settled(provider, fork(parent, args.node, provider, sink, config, messages,
                                        execute=allowed(args)))
    finally:
        bar.close()
    reused = sum(1 for n in trace.nodes if n.reused and n.call)
    print(f"fork of {parent.id} at {args.node}: {reused} call(s) reused", file=sys.stderr)
    return finish(trace, args)


def add_run_parser(sub, common: argparse.ArgumentParser, extra: Sequence[Method]) -> None:
    """`run`: its question, method flags (generated, `extra` included), budgets, endpoint."""
    p = sub.add_parser("run", parents=[common], help="run one question")
    p.add_argument("question", nargs="?",
                   help="the question ('-': read it from standard input)")
    p.add_argument("--question-file", metavar="PATH",
                   help="read the question from this file ('-': standard input)")
    p.add_argument("--answer", help="reference answer, to mark correctness")
    add_method_flags(p, extra)  # --method and every method's declared settings
    p.add_argument("--schedule", help="explicit widths per round, e.g. 8,4,1 (pdr only)")
    p.add_argument("--preset", choices=tuple(PRESETS), default=DEFAULT_PRESET,
                   help="paper: pdr with the paper's schedule 8,4,1; small: the flags as "
                        "given, sized for the bundled model (default: %(default)s)")
    add_knob_flags(p, RUN_KNOBS)
    p.add_argument("--distill-max-tokens", type=int,
                   help="output budget of a summary call (default: --max-tokens); its text "
                        "is then cut to kappa")
    p.add_argument("--total-budget", type=int, help="cap on B_total")
    p.add_argument("--concurrency", type=int,
                   help="calls in flight at once (default: the widest round's, so each "
                        f"round goes out as one wave, at most {DEFAULT_MAX_IN_FLIGHT})")
    endpoint_flags(p)
    p.add_argument("--out", help="also write the trace JSON here")
    add_code_flags(p, problems=True)
    p.set_defaults(func=cmd_run)


def _from_run(sub, common: argparse.ArgumentParser, name: str, command: Command,
              help_text: str) -> argparse.ArgumentParser:
    """A command on a stored run: its id, the run's own endpoint unless flags name one."""
    p = sub.add_parser(name, parents=[common], help=help_text)
    p.add_argument("run_id")
    endpoint_flags(p, recorded=True)
    p.add_argument("--out", help="also write the trace JSON here")
    p.set_defaults(func=command)
    return p


def add_stored_run_parsers(sub, common: argparse.ArgumentParser) -> None:
    """`resume`, `fork` and `baseline`: new calls from a stored run."""
    p = _from_run(sub, common, "resume", cmd_resume,
                  "continue an interrupted run without repeating finished calls")
    add_code_flags(p)
    p = _from_run(sub, common, "fork", cmd_fork,
                  "re-run a run from one node on, reusing everything upstream")
    p.add_argument("--node", required=True, help="the node to call again, e.g. r2-distill-0")
    p.add_argument("--prompts", help="JSON file of templates to use from that node on")
    p.add_argument("--message", help="new text of that node's last message")
    p.add_argument("--width", type=int, help="width of the remaining rounds")
    p.add_argument("--depth", type=int, help="depth of the new run")
    p.add_argument("--max-tokens", type=int, help="per-call budget of the new calls")
    add_code_flags(p)
    p = _from_run(sub, common, "baseline", cmd_baseline,
                  "a single pass whose output budget is a run's B_seq (matched budget); "
                  "prints the new run's id")
    p.add_argument("--context-tokens", type=int,
                   help="the model's context size: the budget is capped to fit it, noted")
