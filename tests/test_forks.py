"""Fork comparison, one-call forks, and the fork flow in the app."""

import asyncio
from pathlib import Path

from conftest import run_fake, started_job
from streamlit.testing.v1 import AppTest

from pdr_core.config import RunConfig
from pdr_core.providers import Completion, Usage
from pdr_core.run.forks import fork_comparison, keep_call
from pdr_core.run.methods import fork, resume
from pdr_core.store import Store
from pdr_core.testing import FakeProvider
from ui.state import run_key

ROOT = Path(__file__).resolve().parent.parent


def test_fork_comparison_says_what_changed_and_whether_it_became_right():
    wrong_first = FakeProvider(answer=lambda m, seed: "7" if seed >= 2000 else "52")
    parent = run_fake(RunConfig(method="pdr", width=3, depth=3), wrong_first)
    assert parent.final_answer == "7" and parent.correct is False
    child = asyncio.run(fork(parent, "r2-distill-0", FakeProvider()))
    comparison = fork_comparison(parent, child)
    assert comparison.changed == ["r2-distill-0", "r3-final-0"]
    assert len(comparison.reused) == 7 and comparison.dropped == []
    assert comparison.answer_changed and comparison.fork_correct is True
    assert comparison.verdict == "The final answer changed from 7 to 52: it became right."
    last = comparison.rounds[-1]
    assert (last.round, last.original, last.fork) == (3, {"7": 1}, {"52": 1})
    same = fork_comparison(parent, parent)
    assert not same.answer_changed and same.verdict.startswith("The final answer did not")


def test_keep_call_stores_a_one_node_fork_that_resume_completes(tmp_path):
    store = Store(tmp_path / "runs.sqlite")
    config = RunConfig(method="pdr", width=2, depth=2, distill="summary")
    parent = run_fake(config, sink=store.writer())
    messages = [dict(m) for m in parent.node("r1-draft-1").messages]
    messages[-1]["content"] = "What is 2 + 2?"
    completion = Completion("It is \\boxed{4}.", Usage(10, 5))
    child = keep_call(parent, "r1-draft-1", messages, completion, store.writer())
    assert child.status == "interrupted"
    assert child.node("r1-draft-1").answer == "4" and not child.node("r1-draft-1").reused
    assert child.node("r1-draft-0").reused
    assert {n.id for n in child.nodes} == {"r1-draft-0", "r1-draft-1"}
    stored = store.get_trace(child.id)
    assert stored.status == "interrupted" and stored.parent_run_id == parent.id
    provider = FakeProvider()
    done = asyncio.run(resume(stored, store.events(child.id), provider,
                              store.resume_writer(child.id)))
    # the summary and the final call, the drafts are kept
    assert done.status == "completed" and len(provider.calls) == 2
    # a node of the last round: the one-node fork is complete at once
    final = keep_call(parent, "r2-final-0", parent.node("r2-final-0").messages,
                      Completion("\\boxed{99}", Usage(3, 3)), store.writer())
    assert final.status == "completed" and final.final_answer == "99"


def test_fork_flow_in_the_app(db):
    store = Store(db)
    parent = run_fake(RunConfig(method="pdr", width=2, depth=3), sink=store.writer())
    provider = FakeProvider()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    at.session_state["provider"] = provider
    at.run()
    at.switch_page("pages/history.py").run()
    at.selectbox(key=run_key(parent.id, "history", "node")).set_value("r2-distill-0").run()
    key = run_key(parent.id, "history", "r2-distill-0")
    message = at.text_area(key=f"{key}_message")
    message.input(message.value.replace("Distill them", "Summarise them tersely")).run()
    at.button(key=f"{key}_fork").click().run()
    assert not at.exception
    job = started_job(at)
    child = job.wait(timeout=30)
    assert child.status == "completed" and len(provider.calls) == 2
    assert child.parent_run_id == parent.id
    assert child.node("r2-distill-0").messages[-1]["content"].count("Summarise them tersely")
    at.run()
    assert not at.exception
    at.switch_page("pages/history.py").run()
    at.selectbox(key="history_open").set_value(child.id).run()
    assert any("Fork of run" in e.label for e in at.expander)
    assert any("did not change" in m.value or "changed from" in m.value for m in at.markdown)


def test_playground_sends_one_call_and_keeps_it(db):
    store = Store(db)
    parent = run_fake(RunConfig(method="vote", width=2), sink=store.writer())
    provider = FakeProvider(answer=lambda m, seed: "1000")
    at = AppTest.from_file(str(ROOT / "pages" / "history.py"), default_timeout=30)
    at.session_state["provider"] = provider
    at.run()
    at.selectbox(key=run_key(parent.id, "history", "node")).set_value("r1-draft-1").run()
    key = run_key(parent.id, "history", "r1-draft-1")
    at.button(key=f"{key}_pg_send").click().run()
    assert not at.exception and len(provider.calls) == 1
    assert any("Before → after" in m.value for m in at.markdown)
    at.button(key=f"{key}_pg_keep").click().run()
    assert any("Kept as run" in s.value for s in at.success)
    assert len(store.list_runs()) == 2
