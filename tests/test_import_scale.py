"""Big imports: linear in the nodes (the run summary is written once per import, not once
per node), and traces over the node cap refused with a message that says so."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.store import many_node_trace
from pdr_core.config import RunConfig
from pdr_core.run.methods import run
from pdr_core.store import Store
from pdr_core.testing import FakeProvider
from pdr_core.trace import TraceError
from pdr_core.trace_import import MAX_TRACE_NODES, trace_from_dict, trace_from_json

ROOT = Path(__file__).resolve().parent.parent


def test_a_20000_node_import_takes_seconds_and_its_summary_is_right(tmp_path):
    """Once the summary was recomputed for each node: 5,000 nodes took 12 s, 20,000 four
    minutes. Linear, 20,000 take about a second; the bound leaves room for a busy machine."""
    text = many_node_trace(20_000)
    store = Store(tmp_path / "runs.sqlite")
    start = time.monotonic()
    run_id = store.import_trace(trace_from_json(text))
    elapsed = time.monotonic() - start
    assert elapsed < 30, f"{elapsed:.1f} s"
    [summary] = store.list_runs()
    trace = store.get_trace(run_id)
    assert len(trace.nodes) == 20_000 and summary.calls == 20_000
    assert (summary.b_seq, summary.b_total) == (trace.budget.b_seq, trace.budget.b_total)
    assert summary.status == "completed" and summary.final_answer == "52"


def small_trace_dict() -> dict:
    trace = asyncio.run(run("What is 1 + 1?", RunConfig(method="single"), FakeProvider()))
    return json.loads(trace.to_json())


def test_a_trace_over_the_node_cap_is_refused_before_it_is_read_node_by_node():
    data = small_trace_dict()
    data["nodes"] = [{}] * (MAX_TRACE_NODES + 1)  # not even valid nodes: never looked at
    with pytest.raises(TraceError) as caught:
        trace_from_dict(data)
    assert str(caught.value) == (
        f"the trace has {MAX_TRACE_NODES + 1:,} nodes; traces of more than "
        f"{MAX_TRACE_NODES:,} are refused (the largest run this tool makes has 8,224)")
    data["nodes"] = [small_trace_dict()["nodes"][0]]
    assert len(trace_from_dict(data).nodes) == 1


def test_the_command_line_refuses_a_trace_over_the_cap_in_one_line(tmp_path):
    data = small_trace_dict()
    data["nodes"] = [{}] * (MAX_TRACE_NODES + 1)
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(data))
    db = tmp_path / "runs.sqlite"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PDR_"))}
    result = subprocess.run([sys.executable, "-m", "pdr_core", "import", str(path), "--db",
                             str(db)], capture_output=True, text=True, cwd=ROOT,
                            env={**env, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {path}: the trace has {MAX_TRACE_NODES + 1:,} nodes; traces of more than "
        f"{MAX_TRACE_NODES:,} are refused (the largest run this tool makes has 8,224)")
    assert Store(db).list_runs() == []
