"""Progress bars for the command line (tqdm on stderr): calls of a run, runs of an
evaluation, files of an import. Shown only when stderr is a terminal: piped or redirected
output (logs, CI, tests) stays free of bar redraws."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

from tqdm import tqdm

from pdr_core.cli_output import raw_stream
from pdr_core.events import Event, NodeFailed, NodeFinished

if TYPE_CHECKING:  # evaluations pull in plotly, which `run` never needs
    from pdr_core.evaluation import EvalProgress


def on_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())


def progress_bar(total: int, unit: str, stream: TextIO | None = None, initial: int = 0,
                 desc: str | None = None) -> tqdm:
    """A bar on `stream` (stderr by default), disabled when that is not a terminal."""
    # Beneath the command line's SafeStream: a bar is only our figures, and needs CR.
    stream = raw_stream(sys.stderr if stream is None else stream)
    return tqdm(total=total, initial=initial, unit=unit, desc=desc, file=stream,
                disable=not on_terminal(stream), dynamic_ncols=True, smoothing=0.1,
                # "3/5 call [00:04<00:02, ...]": done, total, elapsed, ETA, then the postfix
                bar_format="{desc}{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} {unit} "
                           "[{elapsed}<{remaining}{postfix}]")


class CallProgress:
    """An event sink for `run`, `resume` and `fork`: one step per call that ended, with
    failures and tokens; calls a fork reuses count as done, with no tokens."""

    def __init__(self, total_calls: int, stream: TextIO | None = None, initial: int = 0):
        self.failed = 0
        self.tokens = 0
        self.bar = progress_bar(total_calls, "calls", stream, initial)

    def __call__(self, event: Event) -> None:
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
        self.bar.close()


class EvalBar:
    """The `progress` callback of `run_evaluation`: runs done (finished earlier included),
    failures and tokens."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream
        self.bar: tqdm | None = None

    def __call__(self, state: EvalProgress) -> None:
        if self.bar is None:  # the first report says how many runs were done before
            self.bar = progress_bar(state.total, "runs", self.stream, state.done)
        self.bar.set_postfix_str(f"failed {state.failed}, {state.tokens:,} tok",
                                 refresh=False)
        self.bar.update(state.done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
