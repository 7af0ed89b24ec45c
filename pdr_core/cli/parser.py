"""The command line's argument parser: the top level, and each group of commands from the
module that runs it.

A command line that names its command first (after `--db FILE`, if given) is parsed by a
parser holding only that command's group: the others' flags (every method's settings for
`run`, the evaluation's sweep flags) cost a run's start-up time for nothing. Anything that
parser refuses is parsed again by the whole one, so help and errors read as they always did.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from pdr_core.cli.evals import add_eval_parser
from pdr_core.cli.records import add_record_parsers
from pdr_core.cli.runs import add_run_parser, add_stored_run_parsers
from pdr_core.run.api import Method

DB_HELP = "run store file (default: $PDR_DB, else runs.sqlite in the user data folder)"

Group = Callable[[object, argparse.ArgumentParser, Sequence[Method]], None]

# Each group of commands, in the order `--help` lists them, with the commands it adds.
GROUPS: tuple[tuple[Group, tuple[str, ...]], ...] = (
    (add_run_parser, ("run",)),
    (lambda sub, common, extra: add_record_parsers(sub, common),
     ("list", "show", "export", "import", "delete")),
    (lambda sub, common, extra: add_stored_run_parsers(sub, common),
     ("resume", "fork", "baseline")),
    (add_eval_parser, ("eval",)),
)


class _Refused(Exception):
    """A command line the one-group parser would refuse."""


class _OneGroupParser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise _Refused(message)


def build_parser(extra: Sequence[Method] = (), command: str | None = None,
                 parser_class: type[argparse.ArgumentParser] = argparse.ArgumentParser
                 ) -> argparse.ArgumentParser:
    """The parser; `extra`: plugin methods named by reference, whose settings get flags;
    `command`: only that command's group (None: every command)."""
    parser = parser_class(
        prog="python -m pdr_core",
        description="Run Parallel-Distill-Refine reasoning and inspect the stored runs.",
    )
    parser.add_argument("--db", dest="db_top", help=DB_HELP)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", help=DB_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    for add, commands in GROUPS:
        if command is None or command in commands:
            add(sub, common, extra)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The command `argv` names first, after nothing but `--db FILE`; else None."""
    rest = list(argv)
    if rest[:1] == ["--db"]:
        rest = rest[2:]
    elif rest and rest[0].startswith("--db="):
        rest = rest[1:]
    known = {name for _, commands in GROUPS for name in commands}
    return rest[0] if rest and rest[0] in known else None


def parse_args(argv: Sequence[str], extra: Sequence[Method] = ()) -> argparse.Namespace:
    """`argv` parsed: by its command's group alone when it names one first, and by the
    whole parser when it does not or that parser refuses it (which then says why)."""
    command = _command(argv)
    if command is not None:
        try:
            return build_parser(extra, command, _OneGroupParser).parse_args(argv)
        except _Refused:
            pass
    return build_parser(extra).parse_args(argv)
