"""Command line: python -m pdr_core run | list | show | export | import | delete | resume |
fork | baseline | eval.

Only a consumer of the library: every command is a few calls into pdr_core. This module
parses, opens the store and turns the library's errors into one line and an exit status.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Sequence

from pdr_core.cli.methods import named_methods
from pdr_core.cli.outcome import EXIT_FAILED, EXIT_USAGE
from pdr_core.cli.output import safe_output
from pdr_core.cli.parser import parse_args
from pdr_core.config import ConfigError
from pdr_core.heap import end_startup
from pdr_core.prompts import TemplateError
from pdr_core.providers import ProviderError
from pdr_core.store import Store, StoreError
from pdr_core.trace import TraceError

# The commands that call an endpoint: they end the start-up in `endpoint.connect`, once the
# SDK is imported, so that its objects are frozen too and no collection walks them on the way.
CONNECTING = frozenset({"run", "resume", "fork", "baseline", "eval"})


def main(argv: Sequence[str] | None = None) -> int:
    with safe_output():
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        extra = named_methods(argv)
    except ConfigError as exc:  # a --method module:function that cannot be loaded
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    args = parse_args(argv, extra)
    if args.command not in CONNECTING:
        end_startup()
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
