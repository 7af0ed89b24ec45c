"""Resume an interrupted run and fork a run from a node, counting calls."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import QUESTION, interrupt_after, kill_when, run_fake
from test_store import KILLED_RUN

from pdr_core.config import RunConfig
from pdr_core.prompts import PromptSet
from pdr_core.run.methods import fork, resume
from pdr_core.store import Store
from pdr_core.testing import FakeProvider

ROOT = Path(__file__).resolve().parent.parent


def test_resume_after_cancel_repeats_no_finished_call(store):
    config = RunConfig(method="pdr", width=3, depth=3, distill="summary")
    before = interrupt_after(store, QUESTION, config, FakeProvider(delay=0.05), 4, "52")
    assert before.status == "interrupted"
    done = {n.id for n in before.nodes if n.status == "ok"}
    assert len(done) >= 4

    second = FakeProvider()
    trace = asyncio.run(resume(before, store.events(before.id), second,
                               store.resume_writer(before.id)))
    assert trace.status == "completed" and trace.final_answer == "52"
    # every call not finished before the interruption, and none that had finished
    assert 0 < len(second.calls) == config.calls - len(done)
    stored = store.get_trace(before.id)
    assert stored.to_dict() == trace.to_dict()
    assert [n.id for n in stored.nodes] == [n.id for n in run_fake(config).nodes]
    assert all(n.status == "ok" for n in stored.nodes)
    # the same answers a run that was never interrupted gives
    fresh = run_fake(config)
    assert [n.text for n in stored.nodes] == [n.text for n in fresh.nodes]


def test_resume_after_sigkill_continues_without_repeating(tmp_path):
    db = tmp_path / "runs.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(db)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    kill_when(proc, db, 3)
    store = Store(db)
    [summary] = store.list_runs()
    trace = store.get_trace(summary.id)
    assert trace.status == "interrupted"
    finished = {n.id: n.text for n in trace.nodes if n.status == "ok"}
    provider = FakeProvider()
    resumed = asyncio.run(resume(trace, store.events(summary.id), provider,
                                 store.resume_writer(summary.id)))
    assert resumed.status == "completed"
    config = RunConfig.from_dict(trace.config)
    assert len(provider.calls) == config.calls - len(finished)
    after = store.get_trace(summary.id)
    assert after.status == "completed"
    for node_id, text in finished.items():
        assert after.node(node_id).text == text


def test_resume_refuses_a_completed_run():
    trace = run_fake(RunConfig(method="single"))
    with pytest.raises(ValueError, match="already completed"):
        asyncio.run(resume(trace, [], FakeProvider()))


def test_fork_at_round_two_distill_calls_only_downstream():
    config = RunConfig(method="pdr", width=4, depth=3, distill="summary")
    parent = run_fake(config)
    edited = PromptSet(summary="Summarise briefly.\n{question}\n{drafts}")
    new_config = RunConfig(method="pdr", width=4, depth=3, distill="summary", prompts=edited)
    provider = FakeProvider()
    child = asyncio.run(fork(parent, "r2-distill-0", provider, config=new_config))
    # exactly the distill call itself and the final call after it
    assert len(provider.calls) == 2
    assert child.status == "completed"
    assert (child.parent_run_id, child.parent_node_id) == (parent.id, "r2-distill-0")
    reused = [n for n in child.nodes if n.reused]
    assert [n.id for n in reused] == [n.id for n in parent.nodes][:9]
    for node in reused:
        original = parent.node(node.id)
        assert (node.text, node.usage, node.started_at) == (original.text, original.usage,
                                                            original.started_at)
    assert child.node("r2-distill-0").messages[-1]["content"].startswith("Summarise briefly.")
    assert not child.node("r3-final-0").reused


def test_fork_with_edited_messages_and_a_deeper_run():
    parent = run_fake(RunConfig(method="pdr", width=3, depth=2, distill="topk", k=2))
    node = parent.node("r1-draft-1")
    messages = [dict(m) for m in node.messages]
    messages[-1]["content"] = "Solve carefully: What is 2 + 2?"
    provider = FakeProvider()
    deeper = RunConfig(method="pdr", width=3, depth=3, distill="topk", k=2)
    child = asyncio.run(fork(parent, "r1-draft-1", provider, config=deeper, messages=messages))
    assert child.node("r1-draft-1").messages == messages
    assert child.node("r1-draft-1").answer == "4"
    assert child.node("r1-draft-0").reused and child.node("r1-draft-2").reused
    # round 2 now has 3 refinements, a workspace, then the final: 1 + 3 + 1 calls
    assert len(provider.calls) == 5
    with pytest.raises(KeyError, match="no node 'ghost'"):
        asyncio.run(fork(parent, "ghost", provider))


def test_fork_config_keeps_upstream_widths():
    from pdr_core.run.methods import fork_config

    parent = run_fake(RunConfig(method="pdr", depth=3, width_schedule=(4, 4, 1)))
    assert fork_config(parent, "r2-distill-0", width=2).schedule == (4, 4, 1)
    assert fork_config(parent, "r1-distill-0", width=2).schedule == (4, 2, 1)
    assert fork_config(parent, "r1-distill-0", width=6, depth=4).schedule == (4, 6, 6, 1)
    assert fork_config(parent, "r2-refine-1", depth=2).schedule == (4, 4)
    assert fork_config(parent, "r1-draft-0", max_tokens=99).max_tokens == 99
