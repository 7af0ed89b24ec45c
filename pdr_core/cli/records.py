"""The commands on stored runs that call no model: list, show, export, import, delete."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pdr_core.cli.methods import recorded_method
from pdr_core.cli.outcome import EXIT_USAGE, print_result
from pdr_core.cli.progress import progress_bar
from pdr_core.render.textfmt import json_safe
from pdr_core.store import Store
from pdr_core.trace import TraceError
from pdr_core.trace_import import MAX_IMPORT_BYTES, trace_from_json


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
    print_result(trace)
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


def add_record_parsers(sub, common: argparse.ArgumentParser) -> None:
    """`list`, `show`, `export`, `import` and `delete`."""
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

    p = sub.add_parser("delete", parents=[common], help="delete a stored run")
    p.add_argument("run_id")
    p.set_defaults(func=cmd_delete)
