"""The garbage collector in a long-lived process (the app, the command line)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


def freeze_startup_objects() -> None:
    """Take everything alive now (modules, classes, the openai SDK's many types) out of the
    collector's full passes, which otherwise walk them all again and again.

    Call once, after the imports. In an evaluation of 200 runs at once each full pass took
    45-65 ms of the event loop, the longest stalls it had; afterwards 10-16 ms (BENCHMARKS.md).
    Objects made later are collected as usual.
    """
    gc.collect()
    gc.freeze()


@contextmanager
def bulk_build() -> Iterator[None]:
    """No cycle collection while a big tree of plain data is built and used at once.

    Importing a trace of 100,000 nodes makes millions of dicts and lists that all stay alive
    until the import ends; every collector pass walks them again, a cost that grows faster
    than the trace (a 100,000-node import cost 12 times a 10,000-node one, 10 times
    without). Reference counting still frees whatever is dropped; the collector resumes
    after, where it was.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
