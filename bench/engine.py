"""Engine overhead: a width-16 depth-4 PDR run's wall time against its critical path.

The project's OpenAI-protocol test server runs in its own process with 300 ms per call plus
2 ms per output token, and ignores `n` (`--no-n`), so every draft is its own request and the
server's log holds one start and end per call: that is what per-call scheduling is measured
from. The limit is computed from those server-side durations:

- concurrency >= width: the critical path, the sum over waves of the slowest call;
- concurrency C < width: the ideal schedule, list scheduling of each wave's calls on C
  slots, summed over waves.

Rounds whose calls all send the same messages (round-1 drafts, and every refine round after
a summary) are offered to `OpenAIProvider.complete_n` as one shared request. Against this
server, which ignores `n`, the first such request teaches the provider `supports_n is
False`, and from then on the engine makes them as separate calls, each in its own
concurrency slot. The timed runs follow one warm-up run, as in a long-lived process; a
last run with a fresh provider (the app makes one per run) checks the concurrency limit
on that first, probing round.

    python -m bench.engine [--reps 3]
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.common import (
    Figure,
    Report,
    ServerProcess,
    ideal_time,
    note,
    parse_args,
    waves,
)
from pdr_core.config import RunConfig
from pdr_core.events import Event
from pdr_core.providers.base import Provider
from pdr_core.providers.openai import OpenAIProvider
from pdr_core.run.methods import run
from pdr_core.trace import Trace
from tests.openai_server import peak_in_flight

WIDTH = 16
DEPTH = 4
# Distinct from MAX_TOKENS so the server log tells summary calls from generations; both
# are above what the fake model writes (about 45 tokens), so no call is cut short.
MAX_TOKENS = 256
WORKSPACE_TOKENS = 128
QUESTION = "What is 17 * 3 + 1?"


def pdr_config(base_url: str, concurrency: int, width: int = WIDTH, depth: int = DEPTH
               ) -> RunConfig:
    return RunConfig(method="pdr", width=width, depth=depth, distill="summary",
                     max_tokens=MAX_TOKENS, workspace_tokens=WORKSPACE_TOKENS,
                     # the summary's own budget: else it asks for MAX_TOKENS like the rest
                     distill_max_tokens=WORKSPACE_TOKENS,
                     concurrency=concurrency, model="fake-model", base_url=base_url)


def bench_provider(base_url: str) -> OpenAIProvider:
    """No retries: a failed call must show up as a failure, not as a slow call."""
    return OpenAIProvider(base_url, "sk-bench", "fake-model", timeout=60, max_retries=0)


@dataclass(frozen=True)
class Measured:
    """One run: its wall time, the limit from the server's log, and what the server saw."""

    wall: float
    critical_path: float
    ideal: float
    calls: int
    in_flight: int
    trace: Trace


async def measure(server: ServerProcess, provider: Provider, config: RunConfig,
                  sink: Callable[[Event], None] | None = None) -> Measured:
    """One run of `config`, timed here and checked against the server's own log."""
    server.clear()
    start = time.perf_counter()
    trace = await asyncio.wait_for(run(QUESTION, config, provider, sink), timeout=300)
    wall = time.perf_counter() - start
    # Not the one-token request a fresh provider sends to learn whether n is honoured: it
    # is no call of the run, and nothing waits on it.
    requests = [r for r in server.requests() if r["max_tokens"] != 1]
    if trace.status != "completed" or any(r["status"] != 200 for r in requests):
        raise RuntimeError(f"the run did not complete cleanly: {trace.status} {trace.error}")
    if len(requests) != config.calls:
        raise RuntimeError(f"{len(requests)} requests for {config.calls} calls")
    grouped = waves(requests, config.workspace_tokens)
    return Measured(wall, ideal_time(grouped, 10**6), ideal_time(grouped, config.concurrency),
                    len(requests), peak_in_flight(requests), trace)


async def warm_up(server: ServerProcess, provider: OpenAIProvider) -> None:
    """One unmeasured run: the provider learns the server ignores `n`, connections open."""
    await measure(server, provider, pdr_config(server.base_url, WIDTH))


async def bench(report: Report, reps: int) -> None:
    with ServerProcess() as server:
        provider = bench_provider(server.base_url)
        await warm_up(server, provider)
        for concurrency in (WIDTH, 4):
            name = f"c{concurrency}"
            config = pdr_config(server.base_url, concurrency)
            runs = [await measure(server, provider, config) for _ in range(reps)]
            for i, m in enumerate(runs):
                note(f"engine {name} rep {i}: wall {m.wall:.3f}s critical path "
                     f"{m.critical_path:.3f}s ideal on {concurrency} slots {m.ideal:.3f}s, "
                     f"{m.calls} calls, at most {m.in_flight} in flight")
            middle = sorted(runs, key=lambda m: m.wall / m.ideal)[len(runs) // 2]
            if concurrency >= WIDTH:
                report.add(Figure(
                    f"engine.w16d4.{name}.wall_over_critical_path", middle.wall,
                    middle.critical_path, "s", "<=", 1.10,
                    f"median of {reps} runs of {middle.calls} calls"))
            else:
                report.add(Figure(
                    f"engine.w16d4.{name}.wall_over_ideal_schedule", middle.wall, middle.ideal,
                    "s", "<=", 1.10,
                    f"median of {reps} runs; list scheduling on {concurrency} slots"))
                report.add(Figure(
                    f"engine.w16d4.{name}.max_in_flight", max(m.in_flight for m in runs),
                    concurrency, "calls", "<=", 1.0, "as the server saw it, over the runs"))
        # A fresh provider, as the app makes for each run: its first shared round probes n.
        fresh = await measure(server, bench_provider(server.base_url),
                              pdr_config(server.base_url, 4))
        note(f"engine c4, fresh provider: wall {fresh.wall:.3f}s, ideal on 4 slots "
             f"{fresh.ideal:.3f}s, at most {fresh.in_flight} in flight")
        report.add(Figure("engine.w16d4.c4.max_in_flight_fresh_provider", fresh.in_flight, 4,
                          "calls", "<=", 1.0,
                          "first run of a new OpenAIProvider against a server that ignores n"))


def main() -> int:
    args = parse_args(__doc__.splitlines()[0], extra=lambda p: (
        p.add_argument("--reps", type=int, default=3),
    ))
    report = Report(args.json)
    asyncio.run(bench(report, args.reps))
    return 1 if report.missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
