"""Scale in one process: many PDR runs at once through one provider and one event loop.

The server runs in its own process (300 ms a call plus 2 ms an output token, `n` ignored).
Two loads go through this process's one event loop, with a monitor task that sleeps 10 ms
and records how late it wakes:

1. the engine: RUNS runs of PDR at once, each with its own question, through one
   OpenAIProvider, every event to a no-op sink (then again with the SQLite store's writers,
   for the store's share of the wall time);
2. the limit: the very same requests (taken from the server's log of load 1) replayed by a
   bare `openai.AsyncOpenAI` client, streamed like the provider streams, with the same
   concurrency: the RUNS runs at once, each sending its waves one after another and the
   calls of a wave all at once. No engine, no events, no trace.

Calls per second of 1 over 2 is the engine's cost in throughput.

    python -m bench.scale [--runs 200] [--width 4] [--depth 3]
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openai import AsyncOpenAI

from bench.common import (
    Figure,
    LoopMonitor,
    Report,
    ServerProcess,
    StoreClock,
    note,
    parse_args,
    rss_bytes,
    waves,
)
from bench.engine import WORKSPACE_TOKENS, bench_provider, pdr_config
from pdr_core.events import Event
from pdr_core.heap import freeze_startup_objects
from pdr_core.providers.base import Sampling
from pdr_core.run.methods import run
from pdr_core.store import Store
from pdr_core.trace import Trace
from tests.openai_server import peak_in_flight

# Every load is cut off after this long: a stuck load ends the benchmark, not the machine.
LOAD_TIMEOUT = 240
_RUN_OF = re.compile(r"What is (\d+) \* 7\?")


def question(index: int) -> str:
    return f"What is {index} * 7?"


def run_of(request: dict[str, Any]) -> str:
    match = _RUN_OF.search(request["user"])
    return match.group(1) if match else ""


@dataclass(frozen=True)
class Load:
    """What one load did, as this process and the server saw it."""

    wall: float  # from the first request the server read to the last byte it wrote
    client_wall: float  # from starting the load to its end, here
    calls: int
    in_flight: int
    monitor: LoopMonitor
    rss_before: int
    threads_before: int
    requests: list[dict[str, Any]]

    @property
    def calls_per_second(self) -> float:
        return self.calls / self.wall


async def monitored(server: ServerProcess, load: Callable[[], Awaitable[object]],
                    bodies: bool = False) -> Load:
    """Run `load` with the loop monitor; the server's log gives calls and wall time."""
    server.clear()
    monitor = LoopMonitor()
    stop = asyncio.Event()
    threads_before = threading.active_count()
    rss_before = rss_bytes()
    watcher = asyncio.create_task(monitor.watch(stop, time.monotonic() + LOAD_TIMEOUT + 5))
    start = time.perf_counter()
    try:
        await asyncio.wait_for(load(), timeout=LOAD_TIMEOUT)
    finally:
        client_wall = time.perf_counter() - start
        stop.set()
        await watcher
    requests = server.requests(bodies=bodies)
    failed = [r for r in requests if r["status"] != 200]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(requests)} requests failed")
    wall = max(r["end"] for r in requests) - min(r["start"] for r in requests)
    return Load(wall, client_wall, len(requests), peak_in_flight(requests), monitor, rss_before,
                threads_before, requests)


async def engine_load(server: ServerProcess, runs: int, width: int, depth: int,
                      sink_for: Callable[[int], Callable[[Event], None] | None]
                      ) -> tuple[Load, list[Trace]]:
    provider = bench_provider(server.base_url)
    # Learn that the server ignores n before the load, as a long-lived app would have.
    await provider.complete_n([{"role": "user", "content": "hi"}], Sampling(8), 2)
    config = pdr_config(server.base_url, concurrency=width, width=width, depth=depth)
    traces: list[Trace] = []

    async def load() -> None:
        traces.extend(await asyncio.gather(*(run(question(i), config, provider, sink_for(i))
                                             for i in range(runs))))

    result = await monitored(server, load, bodies=True)
    await provider.aclose()
    bad = [t for t in traces if t.status != "completed"]
    if bad or len(traces) != runs:
        raise RuntimeError(f"{len(bad)} runs did not complete: {bad[0].error if bad else ''}")
    return result, traces


async def bare_load(server: ServerProcess, requests: list[dict[str, Any]]) -> Load:
    """Replay `requests` run by run, wave by wave, with a bare streaming openai client."""
    grouped = waves(requests, WORKSPACE_TOKENS, run_of)
    by_run: dict[str, list[list[dict[str, Any]]]] = {}
    for (run_key, _round, _distill), calls in grouped.items():
        by_run.setdefault(run_key, []).append([c["body"] for c in calls])
    client = AsyncOpenAI(base_url=server.base_url, api_key="sk-bench", max_retries=0,
                         timeout=60)

    async def call(body: dict[str, Any]) -> str:
        stream = await client.chat.completions.create(**body)
        pieces = []
        async for chunk in stream:
            for choice in chunk.choices:
                if choice.delta and choice.delta.content:
                    pieces.append(choice.delta.content)
        return "".join(pieces)

    async def one_run(run_waves: list[list[dict[str, Any]]]) -> None:
        for wave in run_waves:
            await asyncio.gather(*(call(body) for body in wave))

    async def load() -> None:
        await asyncio.gather(*(one_run(w) for w in by_run.values()))

    try:
        return await monitored(server, load)
    finally:
        await client.close()


async def bench(report: Report, runs: int, width: int, depth: int, pairs: int) -> None:
    with ServerProcess() as server, tempfile.TemporaryDirectory() as folder:
        engines: list[Load] = []
        bares: list[Load] = []
        # Engine and bare client take turns, so a noisy spell on the machine hits both.
        for _ in range(pairs):
            engine, _traces = await engine_load(server, runs, width, depth, lambda _i: None)
            engines.append(engine)
            bares.append(await bare_load(server, engine.requests))
        for name, load in [*(("engine", e) for e in engines), *(("bare client", b)
                                                                  for b in bares)]:
            note(f"scale {name}: {load.calls} calls in {load.wall:.2f}s "
                 f"({load.calls_per_second:.0f}/s), at most {load.in_flight} in flight, "
                 f"loop late max {load.monitor.max_late * 1000:.0f} ms, "
                 f"p99 {load.monitor.percentile(0.99) * 1000:.0f} ms, "
                 f"threads {load.threads_before} -> {load.monitor.max_threads}, "
                 f"RSS +{(load.monitor.max_rss - load.rss_before) / 2**20:.0f} MiB")
        shape = f"r{runs}w{width}d{depth}"
        stall = max(e.monitor.max_late for e in engines)
        bare_stall = max(b.monitor.max_late for b in bares)
        report.add(Figure(f"scale.{shape}.loop_stall_max", stall * 1000, 100, "ms", "<=", 1.0,
                          f"worst of {pairs} loads; the bare client's worst: "
                          f"{bare_stall * 1000:.0f} ms"))
        # Best of each: noise on a shared machine only ever slows a load down.
        best = max(engines, key=lambda e: e.calls_per_second)
        best_bare = max(bares, key=lambda b: b.calls_per_second)
        report.add(Figure(f"scale.{shape}.calls_per_s_vs_bare_client", best.calls_per_second,
                          best_bare.calls_per_second, "calls/s", ">=", 0.9,
                          f"best of {pairs} loads each, {best.calls} calls a load"))
        first = engines[0]
        per_run = (first.monitor.max_rss - first.rss_before) / runs / 1024
        # No target in the issue: the line holds it against a budget of 1 MiB a run.
        report.add(Figure(f"scale.{shape}.memory_per_run", per_run, 1024, "KiB", "<=", 1.0,
                          "first load's peak RSS minus RSS before it, over the runs"))
        extra = max(e.monitor.max_threads - e.threads_before for e in engines)
        # Not one thread per call: extra threads at most a tenth of the calls in flight.
        report.add(Figure(f"scale.{shape}.extra_threads_per_call_in_flight", extra,
                          max(e.in_flight for e in engines), "threads", "<=", 0.1,
                          "threads started during the load over the most calls in flight"))

        # The same load with every run written to one SQLite store, as the app does.
        store = Store(Path(folder) / "runs.sqlite")
        clock = StoreClock()
        with clock.commits():
            stored, _ = await engine_load(server, runs, width, depth,
                                          lambda _index: clock.sink(store.writer()))
        note(f"scale engine + store: {stored.calls} calls in {stored.wall:.2f}s "
             f"({stored.calls_per_second:.0f}/s), {clock.events} events, "
             f"{clock.seconds:.2f}s in the store, "
             f"loop late max {stored.monitor.max_late * 1000:.0f} ms")
        report.add(Figure(f"store.write_share.{shape}", clock.seconds, stored.client_wall, "s",
                          "<=", 0.05,
                          "time inside the store's sinks and grouped commits over the load's "
                          "wall time"))


def main() -> int:
    args = parse_args(__doc__.splitlines()[0], extra=lambda p: (
        p.add_argument("--runs", type=int, default=200),
        p.add_argument("--width", type=int, default=4),
        p.add_argument("--depth", type=int, default=3),
        p.add_argument("--pairs", type=int, default=2),
    ))
    report = Report(args.json)
    # As the command line does: an evaluation's process is a long-lived one.
    freeze_startup_objects()
    asyncio.run(bench(report, args.runs, args.width, args.depth, args.pairs))
    return 1 if report.missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
