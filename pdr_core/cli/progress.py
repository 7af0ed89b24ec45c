"""Progress bars for the command line (tqdm on stderr): calls of a run, runs of an
evaluation, files of an import. Shown only when stderr is a terminal: piped or redirected
output (logs, CI, tests) stays free of bar redraws."""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING, TextIO

from pdr_core.cli.output import raw_stream
from pdr_core.events import Event, NodeFailed, NodeFinished, NodeStarted

if TYPE_CHECKING:  # evaluations pull in their datasets, which `run` never needs
    from tqdm import tqdm

    from pdr_core.evals.spec import EvalProgress


def on_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())


class NoBar:
    """What a bar is off a terminal: it counts, and draws nothing. tqdm is not imported for
    it (a disabled tqdm bar still imports multiprocessing for its lock: ~50 ms of start)."""

    def __init__(self, initial: int = 0):
        self.n = initial

    def update(self, steps: int = 1) -> None:
        self.n += steps

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        pass

    @staticmethod
    def write(text: str, file: TextIO | None = None) -> None:
        print(text, file=file)

    def close(self) -> None:
        pass


def progress_bar(total: int, unit: str, stream: TextIO | None = None, initial: int = 0,
                 desc: str | None = None) -> tqdm | NoBar:
    """A bar on `stream` (stderr by default); a NoBar when that is not a terminal."""
    # Beneath the command line's SafeStream: a bar is only our figures, and needs CR.
    stream = raw_stream(sys.stderr if stream is None else stream)
    if not on_terminal(stream):
        return NoBar(initial)
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit=unit, desc=desc, file=stream,
                dynamic_ncols=True, smoothing=0.1,
                # "3/5 call [00:04<00:02, ...]": done, total, elapsed, ETA, then the postfix
                bar_format="{desc}{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} {unit} "
                           "[{elapsed}<{remaining}{postfix}]")


# Seconds between "still waiting" lines, and how long a call must have waited for one.
WAITING_EVERY = 30.0


class CallProgress:
    """An event sink for `run`, `resume` and `fork`: one step per call that ended, with
    failures and tokens; calls a fork reuses count as done, with no tokens.

    On a terminal, while a call has gone `waiting_every` seconds without an answer, a line
    every `waiting_every` seconds says how many calls are in flight and for how long the
    oldest has waited: a hanging endpoint is seen at once, not when its timeout ends.
    """

    def __init__(self, total_calls: int, stream: TextIO | None = None, initial: int = 0,
                 waiting_every: float = WAITING_EVERY):
        self.failed = 0
        self.tokens = 0
        self.stream = sys.stderr if stream is None else stream
        self.bar = progress_bar(total_calls, "calls", self.stream, initial)
        # Node id -> when its call started; read by the watcher thread, hence the lock.
        self._in_flight: dict[str, float] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._watcher: threading.Thread | None = None
        if on_terminal(self.stream) and waiting_every > 0:
            self._watcher = threading.Thread(target=self._watch, args=(waiting_every,),
                                             name="pdr-still-waiting", daemon=True)
            self._watcher.start()

    def waiting(self, now: float | None = None) -> tuple[int, float]:
        """Calls in flight, and the seconds the oldest of them has waited."""
        now = time.monotonic() if now is None else now
        with self._lock:
            oldest = min(self._in_flight.values(), default=now)
            return len(self._in_flight), now - oldest

    def _watch(self, every: float) -> None:
        while not self._closed.wait(every):
            count, longest = self.waiting()
            if count and longest >= every:
                self.bar.write(f"still waiting for {count} call{'s' if count != 1 else ''} "
                               f"(longest {longest:.0f} s)", file=self.stream)

    def __call__(self, event: Event) -> None:
        if isinstance(event, NodeStarted):
            with self._lock:
                self._in_flight[event.node_id] = time.monotonic()
            return
        if isinstance(event, NodeFinished | NodeFailed):
            with self._lock:
                self._in_flight.pop(event.node_id, None)
        if isinstance(event, NodeFinished) and event.call:
            if not event.reused:
                self.tokens += (event.usage.get("prompt_tokens", 0)
                                + event.usage.get("completion_tokens", 0))
        elif isinstance(event, NodeFailed):
            self.failed += 1
        else:
            return
        self.bar.set_postfix_str(f"failed {self.failed}, {self.tokens:,} tok", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self._closed.set()
        if self._watcher is not None:
            self._watcher.join()
        self.bar.close()


class EvalBar:
    """The `progress` callback of `run_evaluation`: runs done (finished earlier included),
    failures and tokens."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream
        self.bar: tqdm | NoBar | None = None

    def __call__(self, state: EvalProgress) -> None:
        if self.bar is None:  # the first report says how many runs were done before
            self.bar = progress_bar(state.total, "runs", self.stream, state.done)
        self.bar.set_postfix_str(f"failed {state.failed}, {state.tokens:,} tok",
                                 refresh=False)
        self.bar.update(state.done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
