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


def pause_collection() -> None:
    """No cycle collection while a process starts: importing the openai SDK builds thousands
    of classes, and each collector pass on the way walks all made so far (7% of the command
    line's instructions up to its first request). `end_startup` turns it back on."""
    gc.disable()


def end_startup() -> None:
    """Once the imports are done (the SDK's included): freeze what they made, collection on.

    After `pause_collection` no pass has run, so the import's little garbage is frozen
    with the rest rather than paying a full pass for it. Without it (a test calling the
    command line's `main`) this is `freeze_startup_objects`. Safe to call more than once.
    """
    if gc.isenabled():
        freeze_startup_objects()
        return
    gc.freeze()
    gc.enable()


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
