"""The garbage collector in a long-lived process (the app, the command line)."""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Take everything alive now (modules, classes, the openai SDK's many types) out of the
    collector's full passes, which otherwise walk them all again and again.

    Call once, after the imports. In an evaluation of 200 runs at once each full pass took
    45-65 ms of the event loop, the longest stalls it had; afterwards 10-16 ms (BENCHMARKS.md).
    Objects made later are collected as usual.
    """
    gc.collect()
    gc.freeze()
