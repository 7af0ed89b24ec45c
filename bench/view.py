"""Run view: building the figures of a width-16 depth-8 run, and what selecting a node costs.

1. tree, answer flow and timeline figures of a stored width-16 depth-8 PDR run (120 nodes:
   113 generations and 7 summaries), loaded from SQLite as the pages load it: the median
   of several builds (the first, with plotly's lazy imports, is left out and noted);
2. the History page under `streamlit.testing.v1.AppTest`: open the run, then select two
   other nodes. Counters wrapped around the figure builders and `Store.get_trace` show
   whether a selection rebuilds the figures or reloads the run.

    python -m bench.view
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import ROOT, Figure, Report, median, note, parse_args
from pdr_core.config import RunConfig
from pdr_core.render.flow import answer_flow_figure
from pdr_core.render.timeline import timeline_figure
from pdr_core.render.tree import tree_figure
from pdr_core.run.methods import run
from pdr_core.store import Store
from pdr_core.testing import FakeProvider
from pdr_core.trace import Trace

WIDTH = 16
DEPTH = 8
BUILDS = 7
BUILD_LIMIT_MS = 150
BUILDERS = ("tree_figure", "answer_flow_figure", "timeline_figure")
# The tree rings the selected node, so it is built once per node selected; the others never.
UNSELECTED = ("answer_flow_figure", "timeline_figure")


def stored_run(db: Path) -> Trace:
    """A completed width-16 depth-8 run written to `db`, read back as the pages read it."""
    store = Store(db)
    config = RunConfig(method="pdr", width=WIDTH, depth=DEPTH, max_tokens=256,
                       workspace_tokens=128, model="fake-model")
    # A few ms a call gives the timeline real bars.
    trace = asyncio.run(run("What is 17 * 3 + 1?", config, FakeProvider(delay=0.005),
                            store.writer(), reference="52"))
    return store.get_trace(trace.id)


def build_all(trace: Trace) -> float:
    """Seconds to build the three figures once."""
    start = time.perf_counter()
    tree_figure(trace)
    answer_flow_figure(trace)
    timeline_figure(trace)
    return time.perf_counter() - start


@dataclass
class Counter:
    """Calls per name, counted by wrappers installed with `count`."""

    calls: dict[str, int] = field(default_factory=dict)

    def wrap(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return func(*args, **kwargs)
        return counted

    def total(self, names: tuple[str, ...]) -> int:
        return sum(self.calls.get(n, 0) for n in names)


@contextmanager
def counting(counter: Counter) -> Iterator[None]:
    """Count the run view's figure builders (as ui.run_view calls them) and run loads."""
    import ui.run_view as components

    saved = {name: getattr(components, name) for name in BUILDERS}
    saved_load = Store.get_trace
    for name, func in saved.items():
        setattr(components, name, counter.wrap(name, func))
    Store.get_trace = counter.wrap("get_trace", saved_load)  # type: ignore[method-assign]
    try:
        yield
    finally:
        for name, func in saved.items():
            setattr(components, name, func)
        Store.get_trace = saved_load  # type: ignore[method-assign]


def history_page(report: Report, trace: Trace) -> None:
    from streamlit.testing.v1 import AppTest

    import ui.run_view as components

    counter = Counter()
    with counting(counter):
        at = AppTest.from_file(str(ROOT / "pages" / "history.py"), default_timeout=120)
        start = time.perf_counter()
        at.run()
        first_ms = (time.perf_counter() - start) * 1000
        if at.exception:
            raise RuntimeError(f"the History page failed: {at.exception}")
        opened = dict(counter.calls)
        picker = at.selectbox(key=f"history_node_{trace.id}")
        others = [o for o in picker.options if o and o != picker.value][:2]
        rerun_ms = []
        for node_id in others:
            start = time.perf_counter()
            at.selectbox(key=f"history_node_{trace.id}").set_value(node_id).run()
            rerun_ms.append((time.perf_counter() - start) * 1000)
            if at.exception:
                raise RuntimeError(f"selecting {node_id} failed: {at.exception}")
        builds = counter.total(UNSELECTED) - sum(opened.get(n, 0) for n in UNSELECTED)
        loads = counter.calls.get("get_trace", 0) - opened.get("get_trace", 0)
        # The same selections with the figure cache emptied first: what each one cost before.
        uncached_ms = []
        for node_id in reversed(others):
            components._cached_figures.clear()
            components._cached_tree.clear()
            start = time.perf_counter()
            at.selectbox(key=f"history_node_{trace.id}").set_value(node_id).run()
            uncached_ms.append((time.perf_counter() - start) * 1000)
    note(f"view: History page first run {first_ms:.0f} ms; node selection reruns "
         f"{', '.join(f'{t:.0f}' for t in rerun_ms)} ms with the figure cache, "
         f"{', '.join(f'{t:.0f}' for t in uncached_ms)} ms rebuilding the figures; "
         f"calls on opening: {opened}")
    report.add(Figure("view.w16d8.figure_builds_on_node_select", builds,
                      sum(opened.get(n, 0) for n in UNSELECTED), "calls", "<=", 0.0,
                      f"{len(others)} selections; answer flow and timeline (the tree rings "
                      "the node selected); limit: builds when the run was opened"))
    report.add(Figure("view.w16d8.run_loads_on_node_select", loads, opened.get("get_trace", 0),
                      "calls", "<=", 0.0,
                      f"{len(others)} selections; the run is cached on its revision "
                      "(limit: loads when opened)"))


def bench(report: Report) -> None:
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "runs.sqlite"
        # The pages find the store through PDR_DB; this process is the only user of it.
        os.environ["PDR_DB"] = str(db)
        trace = stored_run(db)
        store = Store(db)
        loads = []
        for _ in range(BUILDS):
            start = time.perf_counter()
            store.get_trace(trace.id)
            loads.append((time.perf_counter() - start) * 1000)
        note(f"view: loading the run from SQLite takes {median(loads):.1f} ms (median)")
        cold = build_all(trace)
        times = [build_all(trace) for _ in range(BUILDS)]
        note(f"view: {len(trace.nodes)} nodes; first build {cold * 1000:.0f} ms (imports), "
             f"then {', '.join(f'{t * 1000:.0f}' for t in times)} ms")
        report.add(Figure("view.w16d8.build_3_figures", median(times) * 1000, BUILD_LIMIT_MS,
                          "ms", "<=", 1.0, f"median of {BUILDS}; {len(trace.nodes)} nodes"))
        history_page(report, trace)


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    report = Report(args.json)
    bench(report)
    return 1 if report.missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
