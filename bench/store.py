"""Store: what writing events costs a run, loading a big run, listing many runs.

1. write share: the width-16 depth-4 run of `bench.engine` (server in its own process,
   300 ms a call plus 2 ms an output token), its events written by the SQLite store's
   writer; time spent inside the sink over the run's wall time (median of the runs), and
   the wall time against the same run without the store, for comparison;
2. load: a stored run of 500 nodes holding 1 MB of text (1,600-character outputs and
   prompts of about 400 characters), `Store.get_trace`, median of several loads;
3. list: `Store.list_runs(limit=5000)` over a store of 5,000 runs (and the History page's
   own query, `count_runs` plus a page of 50), median of several;
4. import: a 100,000-node trace (the most an import takes, 45 MB of JSON, under the size
   limit) parsed and stored in a fresh store, against ten times a 10,000-node one: linear
   import keeps the ratio near 1 (the run summary was once recomputed per node: quadratic).

    python -m bench.store [--reps 3]
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from bench.common import Figure, Report, ServerProcess, StoreClock, median, note, parse_args
from bench.engine import WIDTH, bench_provider, measure, pdr_config, warm_up
from pdr_core.config import RunConfig
from pdr_core.events import now_iso
from pdr_core.run.methods import run
from pdr_core.store import Store
from pdr_core.testing import FakeProvider
from pdr_core.trace import Node, Trace
from pdr_core.trace_import import MAX_IMPORT_BYTES, MAX_TRACE_NODES, trace_from_json

LOADS = 7
LOAD_LIMIT_MS = 100
LIST_LIMIT_MS = 200
RUNS_LISTED = 5000
IMPORT_SMALL = 10_000
# The fastest of a few: on a shared machine the other processes only ever add time.
IMPORT_REPS = {IMPORT_SMALL: 3, MAX_TRACE_NODES: 2}
NODES = 500
ROUNDS = 20  # 20 rounds of 24 generations and one summary: 500 nodes
OUTPUT_CHARS = 1600
PROMPT_CHARS = 400


async def write_share(report: Report, reps: int, folder: Path) -> None:
    store = Store(folder / "written.sqlite")
    with ServerProcess() as server:
        provider = bench_provider(server.base_url)
        await warm_up(server, provider)
        config = pdr_config(server.base_url, WIDTH)
        spent: list[tuple[float, float]] = []  # (seconds in the sink, wall seconds)
        with_store, without = [], []
        for _ in range(reps):
            clock = StoreClock()
            with clock.commits():
                stored = await measure(server, provider, config, clock.sink(store.writer()))
            plain = await measure(server, provider, config)
            spent.append((clock.seconds, stored.wall))
            with_store.append(stored.wall / stored.critical_path)
            without.append(plain.wall / plain.critical_path)
            note(f"store write: {clock.events} events, {clock.seconds * 1000:.1f} ms in the store, "
                 f"run {stored.wall:.3f}s (critical path {stored.critical_path:.3f}s); "
                 f"without the store {plain.wall:.3f}s ({plain.critical_path:.3f}s)")
        in_sink, wall = sorted(spent, key=lambda s: s[0] / s[1])[len(spent) // 2]
        report.add(Figure("store.write_share.w16d4", in_sink, wall, "s", "<=", 0.05,
                          f"median of {reps}; wall/critical path {median(with_store):.3f} "
                          f"with the store, {median(without):.3f} without"))


def big_trace(nodes_per_round: int = 24) -> Trace:
    """A completed PDR-shaped trace of NODES nodes and about 1 MB of text."""
    rng = random.Random(0)
    words = ["step", "sum", "the", "value", "check", "carry", "modulo", "prime", "so",
             "therefore", "we", "get", "factor", "bound", "case", "even", "odd"]

    def text(chars: int) -> str:
        out: list[str] = []
        size = 0
        while size < chars:
            word = rng.choice(words)
            out.append(word)
            size += len(word) + 1
        return " ".join(out)[:chars]

    created = now_iso()
    trace = Trace(id="big500", question="What is 17 * 3 + 1?", reference_answer="52",
                  config=RunConfig(method="pdr", width=nodes_per_round, depth=ROUNDS + 1
                                   ).to_dict(),
                  created_at=created, status="completed", final_answer="52", correct=True,
                  finished_at=created)
    previous: list[str] = []
    for round_ in range(1, ROUNDS + 1):
        stage = "draft" if round_ == 1 else "refine"
        ids = []
        for branch in range(nodes_per_round):
            node_id = f"r{round_}-{stage}-{branch}"
            ids.append(node_id)
            trace.nodes.append(Node(
                id=node_id, stage=stage, round=round_, branch=branch,
                parent_ids=previous[-1:], started_at=created, finished_at=created,
                messages=[{"role": "user", "content": text(PROMPT_CHARS)}],
                text=text(OUTPUT_CHARS - 20) + " \\boxed{52}", answer="52", correct=True,
                usage={"prompt_tokens": 100, "completion_tokens": 400}, status="ok"))
        distill = f"r{round_}-distill-0"
        trace.nodes.append(Node(
            id=distill, stage="distill", round=round_, branch=0, parent_ids=ids,
            started_at=created, finished_at=created,
            messages=[{"role": "user", "content": text(PROMPT_CHARS)}],
            text=text(OUTPUT_CHARS), usage={"prompt_tokens": 100, "completion_tokens": 400},
            status="ok"))
        previous = [distill]
    return trace


def timed_ms(func: Callable[[], object], times: int) -> list[float]:
    out = []
    for _ in range(times):
        start = time.perf_counter()
        func()
        out.append((time.perf_counter() - start) * 1000)
    return out


def load(report: Report, folder: Path) -> None:
    store = Store(folder / "big.sqlite")
    trace = big_trace()
    chars = sum(len(n.text) + sum(len(m["content"]) for m in n.messages) for n in trace.nodes)
    run_id = store.import_trace(trace)
    times = timed_ms(lambda: store.get_trace(run_id), LOADS + 1)
    loaded = store.get_trace(run_id)
    if len(loaded.nodes) != NODES:
        raise RuntimeError(f"loaded {len(loaded.nodes)} nodes, stored {NODES}")
    note(f"store load: {NODES} nodes, {chars / 1e6:.2f} M characters; first load "
         f"{times[0]:.1f} ms, then {', '.join(f'{t:.1f}' for t in times[1:])} ms")
    report.add(Figure("store.load_500_nodes_1MB", median(times[1:]), LOAD_LIMIT_MS, "ms",
                      "<=", 1.0, f"median of {LOADS}"))


def fill(store: Store, count: int) -> None:
    """`count` runs: one real stored run, its row and events copied under new ids."""
    config = RunConfig(method="vote", width=3, model="fake-model")
    trace = asyncio.run(run("What is 6 * 7?", config, FakeProvider(), store.writer(),
                            reference="42"))
    with closing(sqlite3.connect(store.path)) as conn, conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(runs)")]
        copied = ", ".join(c for c in columns if c not in ("id", "created_at"))
        for i in range(1, count):
            new_id = f"{i:012d}"
            conn.execute(
                f"INSERT INTO runs (id, created_at, {copied}) SELECT ?, ?, {copied} FROM runs"
                " WHERE id = ?", (new_id, f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}"
                                          f".{i:06d}+00:00", trace.id))
            conn.execute("INSERT INTO events (run_id, seq, payload) SELECT ?, seq, payload"
                         " FROM events WHERE run_id = ?", (new_id, trace.id))


def listing(report: Report, folder: Path) -> None:
    store = Store(folder / "many.sqlite")
    fill(store, RUNS_LISTED)
    listed = store.list_runs(limit=RUNS_LISTED)
    if len(listed) != RUNS_LISTED:
        raise RuntimeError(f"listed {len(listed)} runs, stored {RUNS_LISTED}")
    times = timed_ms(lambda: store.list_runs(limit=RUNS_LISTED), LOADS)
    page = timed_ms(lambda: (store.count_runs(), store.list_runs(limit=50)), LOADS)
    note(f"store list: {RUNS_LISTED} runs in {', '.join(f'{t:.1f}' for t in times)} ms; "
         f"History page query (count + 50) {median(page):.1f} ms")
    report.add(Figure("store.list_5000_runs", median(times), LIST_LIMIT_MS, "ms", "<=", 1.0,
                      f"median of {LOADS}; list_runs(limit=5000)"))
    report.add(Figure("store.history_page_query_5000_runs", median(page), LIST_LIMIT_MS, "ms",
                      "<=", 1.0, f"median of {LOADS}; count_runs() + list_runs(limit=50)"))


def many_node_trace(nodes: int, per_round: int = 250) -> str:
    """A completed trace of `nodes` small nodes (rounds of `per_round` drafts and a summary),
    as compact JSON."""
    created = now_iso()
    trace = Trace(id=f"many{nodes}", question="What is 17 * 3 + 1?", reference_answer="52",
                  config=RunConfig(method="pdr", width=4, depth=2).to_dict(),
                  created_at=created, status="completed", final_answer="52", correct=True,
                  finished_at=created)
    previous: list[str] = []
    round_ = 0
    while len(trace.nodes) < nodes:
        round_ += 1
        stage = "draft" if round_ == 1 else "refine"
        ids = []
        for branch in range(min(per_round, nodes - len(trace.nodes) - 1) or 1):
            node_id = f"r{round_}-{stage}-{branch}"
            ids.append(node_id)
            trace.nodes.append(Node(
                id=node_id, stage=stage, round=round_, branch=branch, parent_ids=previous,
                started_at=created, finished_at=created,
                messages=[{"role": "user", "content": "Refine."}], text="So \\boxed{52}.",
                answer="52", correct=True, usage={"prompt_tokens": 9, "completion_tokens": 5},
                status="ok"))
        if len(trace.nodes) < nodes:
            distill = f"r{round_}-distill-0"
            trace.nodes.append(Node(
                id=distill, stage="distill", round=round_, branch=0, parent_ids=ids,
                started_at=created, finished_at=created,
                messages=[{"role": "user", "content": "Summarise."}], text="All say 52.",
                usage={"prompt_tokens": 9, "completion_tokens": 5}, status="ok"))
            previous = [distill]
    return json.dumps(trace.to_dict(), separators=(",", ":"))


def timed_import(folder: Path, text: str) -> float:
    """CPU seconds to parse `text` and store it in a fresh store, as `import` does. CPU
    time, not wall time: how the work grows with the nodes is the question, and other
    processes on a shared machine add wall time at random."""
    store = Store(folder / f"import{len(text)}.sqlite")
    gc.collect()  # each import starts from the same heap
    start = time.process_time()
    store.import_trace(trace_from_json(text))
    seconds = time.process_time() - start
    store.path.unlink()
    return seconds


def importing(report: Report, folder: Path) -> None:
    small = many_node_trace(IMPORT_SMALL)
    large = many_node_trace(MAX_TRACE_NODES)
    if len(large) > MAX_IMPORT_BYTES:
        raise RuntimeError(f"the {MAX_TRACE_NODES}-node trace is {len(large):,} bytes, over "
                           "the import limit")
    small_s = min(timed_import(folder, small) for _ in range(IMPORT_REPS[IMPORT_SMALL]))
    large_s = min(timed_import(folder, large) for _ in range(IMPORT_REPS[MAX_TRACE_NODES]))
    note(f"store import: {IMPORT_SMALL:,} nodes ({len(small) / 1e6:.1f} MB) in {small_s:.2f} "
         f"CPU s, {MAX_TRACE_NODES:,} nodes ({len(large) / 1e6:.1f} MB) in {large_s:.2f} CPU s")
    report.add(Figure(f"store.import_{MAX_TRACE_NODES // 1000}k_nodes", large_s,
                      10 * small_s, "CPU s", "<=", 1.0,
                      f"against 10x the {IMPORT_SMALL // 1000}k-node import (fastest of "
                      f"{IMPORT_REPS[IMPORT_SMALL]} and {IMPORT_REPS[MAX_TRACE_NODES]}): "
                      "linear"))


def main() -> int:
    args = parse_args(__doc__.splitlines()[0], extra=lambda p: p.add_argument(
        "--reps", type=int, default=3))
    report = Report(args.json)
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(write_share(report, args.reps, Path(folder)))
        load(report, Path(folder))
        listing(report, Path(folder))
        importing(report, Path(folder))
    return 1 if report.missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
