"""The command line's stdout and stderr, made safe for a terminal.

Model text and imported traces reach `run`, `show`, `list` and every error message; a
control character in them (ESC, BEL, CR, NUL, CSI) would drive the user's terminal. While
a command runs, both streams pass everything written through `terminal_safe`; progress
bars, which write only their own figures and need CR, draw on the stream beneath.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from pdr_core.render.textfmt import terminal_safe


class SafeStream:
    """A text stream that writes `terminal_safe(text)` to the stream it wraps."""

    def __init__(self, raw: TextIO):
        self.raw = raw

    def write(self, text: str) -> int:
        self.raw.write(terminal_safe(text))
        return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    # Equal to the stream it wraps: tqdm then clears its bars on that stream before a line
    # is written through this one (tqdm.write), as it does for sys.stderr itself.
    def __eq__(self, other: object) -> bool:
        return other is self or other is self.raw

    def __hash__(self) -> int:
        return hash(self.raw)

    def __getattr__(self, name: str):
        # flush, isatty, fileno, encoding, ...: the wrapped stream's own
        return getattr(self.raw, name)


def raw_stream(stream: TextIO) -> TextIO:
    """The stream beneath a SafeStream (a progress bar's), else `stream` itself."""
    return stream.raw if isinstance(stream, SafeStream) else stream


@contextmanager
def safe_output() -> Iterator[None]:
    """Within it, sys.stdout and sys.stderr are SafeStreams."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = SafeStream(saved[0]), SafeStream(saved[1])
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
