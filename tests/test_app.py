"""The Streamlit pages through AppTest, with the fake provider injected at our own seam."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pdr_core.config import RunConfig
from pdr_core.store import Store
from pdr_core.testing import FakeProvider, default_answer
from pdr_core.textfmt import model_markdown

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = '<script>alert("x")</script><img src=x onerror="alert(1)">'


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = tmp_path / "runs.sqlite"
    monkeypatch.setenv("PDR_DB", str(path))
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "PDR_MODEL"):
        monkeypatch.delenv(name, raising=False)
    return path


def app(provider: FakeProvider | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    if provider is not None:
        at.session_state["provider"] = provider
    return at.run()


def start_run(at: AppTest, question: str, reference: str = "", **sliders) -> AppTest:
    at.text_area(key="question").input(question)
    at.text_input(key="reference").input(reference)
    for key, value in sliders.items():
        widget = at.select_slider(key=key) if key in ("max_tokens", "workspace_tokens") \
            else at.slider(key=key)
        widget.set_value(value)
    at.run()
    at.button(key="run_button").click().run()
    [job] = at.session_state["jobs"].values()
    job.wait(timeout=30)
    return at.run()


def test_run_page_runs_and_renders_tree_detail_and_diff(db):
    at = app(FakeProvider())
    assert not at.exception
    assert at.title[0].value == "Run"
    start_run(at, "What is 17 * 3 + 1?", "52", width=3, depth=3)
    assert not at.exception, at.exception
    stored = Store(db).list_runs()
    assert len(stored) == 1 and stored[0].status == "completed"
    assert any(m.value == "**Final answer:** `52` · :green[**correct**]" for m in at.markdown)
    picker = at.selectbox(key="live_node")
    # 3 drafts, a summary, 3 refinements, a summary, the final
    assert len(picker.options) == 1 + 9 and picker.options[4].startswith("r1-distill-0 (distill")
    assert picker.options[0].startswith("Latest finished node")
    assert any(c.value.startswith("Showing r3-final-0") for c in at.caption)
    picker.set_value("r2-refine-1").run()
    assert not at.exception
    # the node detail: its output text and a diff against its round-1 predecessor
    node = Store(db).get_trace(stored[0].id).node("r2-refine-1")
    assert any(model_markdown(node.text) == m.value for m in at.markdown)
    assert any("Against r1-draft-1" in m.value for m in at.markdown)
    assert at.get("html"), "the diff is drawn"
    assert "<ins" in at.get("html")[0].proto.body or "<del" in at.get("html")[0].proto.body


def test_budget_preview_and_invalid_settings_message(db):
    at = app(FakeProvider())
    at.selectbox(key="distill").set_value("topk").run()
    at.slider(key="width").set_value(2).run()
    at.slider(key="k").set_value(3).run()
    errors = [e.value for e in at.error]
    assert any("k=3 is invalid" in e and "from 1 to 2" in e for e in errors), errors
    assert at.button(key="run_button").disabled
    at.slider(key="k").set_value(2).run()
    assert not at.error
    config = RunConfig(method="pdr", width=2, depth=2, distill="topk", k=2)
    calls = [m for m in at.metric if m.label == "Calls"]
    assert calls and calls[0].value == str(config.calls)


def test_empty_question_is_refused_without_a_run(db):
    at = app(FakeProvider())
    at.button(key="run_button").click().run()
    assert any("Write a question first" in e.value for e in at.error)
    assert Store(db).list_runs() == []


def test_hostile_model_output_renders_inert(db):
    provider = FakeProvider(answer=lambda messages, seed: HOSTILE if seed == 0
                            else default_answer(messages, seed))
    at = app(provider)
    start_run(at, "What is 2 + 2?", "4", width=2, depth=2)
    assert not at.exception
    for element in at.markdown:
        # st.markdown never renders raw HTML unless told to; model text must not be.
        if "alert" in element.value:
            assert not element.proto.allow_html
    at.selectbox(key="live_node").set_value("r1-draft-0").run()
    at.selectbox(key="live_diff_other").set_value("r1-draft-1").run()
    bodies = [h.proto.body for h in at.get("html")]
    assert bodies
    for body in bodies:
        assert "<script" not in body and "<img" not in body
    assert any("&lt;script&gt;" in body for body in bodies)


def test_saved_runs_page_shows_a_stored_run(db):
    import asyncio

    from pdr_core.methods import run

    store = Store(db)
    trace = asyncio.run(run("What is 6 * 7?", RunConfig(method="vote", width=3),
                            FakeProvider(), store.writer(), reference="42"))
    at = AppTest.from_file(str(ROOT / "pages" / "saved.py"), default_timeout=30).run()
    assert not at.exception
    assert at.selectbox(key="saved_run").value == trace.id
    assert at.selectbox(key="saved_node").options


def test_settings_page_validates_the_endpoint(db):
    at = AppTest.from_file(str(ROOT / "pages" / "settings.py"), default_timeout=30).run()
    assert not at.exception
    at.radio(key="endpoint_mode").set_value("OpenAI-compatible endpoint").run()
    at.text_input(key="base_url").input("localhost:8000").run()
    assert any("not a valid URL" in e.value for e in at.error)
    assert at.button(key="test_connection").disabled
    at.text_input(key="base_url").input("http://127.0.0.1:9/v1").run()
    at.text_input(key="model_name").input("m").run()
    assert not at.error
    at.text_input(key="api_key").input("sk-PLANTED-secret-777").run()
    at.button(key="test_connection").click().run()
    messages = [e.value for e in at.error]
    assert any("127.0.0.1:9" in m for m in messages), messages
    assert not any("PLANTED" in m for m in messages)
    assert at.session_state["endpoint_settings"].api_key == "sk-PLANTED-secret-777"
    assert not db.exists() or b"PLANTED" not in db.read_bytes()


def test_cancel_stops_the_run_and_keeps_finished_nodes(db):
    at = app(FakeProvider(delay=0.4))
    at.text_area(key="question").input("What is 5 * 5?")
    at.slider(key="depth").set_value(4)
    at.run()
    at.button(key="run_button").click().run()
    [job] = at.session_state["jobs"].values()
    assert job.running
    # the page that started the run may rerun any number of times: the run goes on
    at.run()
    assert job.running
    deadline = time.monotonic() + 20
    while Store(db).list_runs()[0].calls < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    at.button(key="cancel_button").click().run()
    assert not job.running
    trace = Store(db).get_trace(job.run_id)
    assert trace.status == "interrupted"
    assert sum(n.status == "ok" for n in trace.nodes) >= 4
    assert any("interrupted" in m.value for m in at.markdown)
