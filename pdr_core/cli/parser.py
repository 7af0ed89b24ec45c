"""The command line's argument parser: the top level, and each group of commands from the
module that runs it."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from pdr_core.cli.evals import add_eval_parser
from pdr_core.cli.records import add_record_parsers
from pdr_core.cli.runs import add_run_parser, add_stored_run_parsers
from pdr_core.run.api import Method

DB_HELP = "run store file (default: $PDR_DB, else runs.sqlite in the user data folder)"


def build_parser(extra: Sequence[Method] = ()) -> argparse.ArgumentParser:
    """The parser; `extra`: plugin methods named by reference, whose settings get flags."""
    parser = argparse.ArgumentParser(
        prog="python -m pdr_core",
        description="Run Parallel-Distill-Refine reasoning and inspect the stored runs.",
    )
    parser.add_argument("--db", dest="db_top", help=DB_HELP)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", help=DB_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    add_run_parser(sub, common, extra)
    add_record_parsers(sub, common)
    add_stored_run_parsers(sub, common)
    add_eval_parser(sub, common, extra)
    return parser
