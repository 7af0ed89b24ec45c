"""The local-model worker process: `python -m pdr_core.providers.local.worker`.

It speaks JSON lines: requests on stdin, replies on the file descriptor that was stdout
(llama.cpp's own prints are sent to stderr, so nothing can corrupt the protocol). The first
request loads the model; the rest are completions and cancellations, decoded together by
`Decoder`. End of stdin (the parent exited, however it died) ends the worker at its next
step, so no worker outlives the process that started it.

Test-only switch: PDR_TEST_CRASH_LOCAL_WORKER=SIGNAL:N[:MARKER] makes the worker kill itself
with SIGNAL (or hang, for SIGNAL "hang") after N generated tokens; with MARKER, only while
that file does not exist yet (it is created first), so the next worker runs normally.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sys
import threading
import time
from pathlib import Path
from typing import IO

CRASH_SWITCH = "PDR_TEST_CRASH_LOCAL_WORKER"
_EOF = None


def main() -> int:
    out = _protocol_stream()
    requests: queue.Queue[dict | None] = queue.Queue()
    threading.Thread(target=_read_stdin, args=(requests,), daemon=True).start()
    spec = requests.get()
    if spec is _EOF:
        return 0
    from pdr_core.providers.local.serve import Server

    server = Server.load(spec, _Writer(out, _crash_switch()))
    if server is None:
        return 3
    return server.serve(requests)


def _protocol_stream() -> IO[str]:
    """The real stdout for replies; file descriptor 1 itself now points at stderr."""
    protocol = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(protocol, "w", encoding="utf-8", buffering=1 << 16)


def _read_stdin(requests: queue.Queue[dict | None]) -> None:
    for line in sys.stdin:
        if line.strip():
            requests.put(json.loads(line))
    requests.put(_EOF)


class _Writer:
    """Buffers the replies of one decoding step and sends them together."""

    def __init__(self, out: IO[str], crash: tuple[str, int, Path | None] | None):
        self.out = out
        self.lines: list[str] = []
        self.crash = crash
        self.tokens = 0

    def send(self, message: dict) -> None:
        self.lines.append(json.dumps(message, ensure_ascii=False))
        if "delta" in message and self.crash is not None:
            self.tokens += 1
            if self.tokens >= self.crash[1]:
                crash, self.crash = self.crash, None
                self.flush()
                _crash(*crash)

    def flush(self) -> None:
        if self.lines:
            self.out.write("\n".join(self.lines) + "\n")
            self.out.flush()
            self.lines.clear()


def _crash_switch() -> tuple[str, int, Path | None] | None:
    value = os.environ.get(CRASH_SWITCH, "")
    if not value:
        return None
    name, count, *marker = value.split(":", 2)
    return name, int(count), Path(marker[0]) if marker else None


def _crash(name: str, _count: int, marker: Path | None) -> None:
    if marker is not None:
        if marker.exists():
            return
        marker.touch()
    if name == "hang":
        while True:
            time.sleep(3600)
    os.kill(os.getpid(), getattr(signal, name))


if __name__ == "__main__":
    raise SystemExit(main())
