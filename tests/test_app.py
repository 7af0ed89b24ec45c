"""The Streamlit pages through AppTest, with the fake provider injected at our own seam."""

from __future__ import annotations

import time
from pathlib import Path

from conftest import interrupt_after, plain, started_job
from streamlit.testing.v1 import AppTest

from pdr_core.config import RunConfig
from pdr_core.render.textfmt import model_markdown
from pdr_core.store import Store
from pdr_core.testing import FakeProvider, default_answer
from ui.state import run_key

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = '<script>alert("x")</script><img src=x onerror="alert(1)">'


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
    job = started_job(at)
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
    assert any(m.value == "**Final answer:** 52 · :green[**correct**]" for m in at.markdown)
    picker = at.selectbox(key=run_key(stored[0].id, "live", "node"))
    # 3 drafts, a summary, 3 refinements, a summary, the final
    assert len(picker.options) == 9 and picker.options[3].startswith("r1-distill-0 (distill")
    # A finished run has no "latest" to follow: it opens on its last node.
    assert not any(o.startswith("Latest finished node") for o in picker.options)
    assert picker.value == "r3-final-0"
    picker.set_value("r2-refine-1").run()
    assert not at.exception
    # the node detail: its output text and a diff against its round-1 predecessor
    node = Store(db).get_trace(stored[0].id).node("r2-refine-1")
    assert any(model_markdown(node.text) == m.value for m in at.markdown)
    assert any("Against r1-draft-1" in plain(m.value) for m in at.markdown)
    assert at.get("html"), "the diff is drawn"
    assert "<ins" in at.get("html")[0].proto.body or "<del" in at.get("html")[0].proto.body


def test_run_page_offers_examples_from_every_built_in_benchmark(db):
    at = app(FakeProvider())
    options = at.selectbox(key="example").options
    for title in ("AIME 2024 · aime2024-01", "AIME 2025 · aime2025-01", "MATH-500 · math500-001",
                  "GSM8K (test) · gsm8k-0001"):
        assert any(o.startswith(title) for o in options), title
    [gsm8k] = [o for o in options if o.startswith("GSM8K (test) · gsm8k-0001")]
    at.selectbox(key="example").set_value(gsm8k).run()
    assert not at.exception
    assert at.text_area(key="question").value.startswith("Janet’s ducks lay 16 eggs per day.")
    assert at.text_input(key="reference").value == "18"


def test_a_node_without_an_answer_says_why_and_one_with_an_answer_names_its_rule(db):
    # draft 0 writes an empty box; the others answer as usual
    provider = FakeProvider(answer=lambda messages, seed: "" if seed == 0
                            else default_answer(messages, seed))
    at = app(provider)
    start_run(at, "What is 2 + 2?", "4", width=2, depth=2)
    picker = run_key(Store(db).list_runs()[0].id, "live", "node")
    at.selectbox(key=picker).set_value("r1-draft-0").run()
    assert not at.exception
    assert [w.value for w in at.warning] == ["No answer: every \\boxed{} in it is empty."]
    at.selectbox(key=picker).set_value("r1-draft-1").run()
    assert not at.warning
    assert any("answer found by the rule “boxed”" in c.value for c in at.caption)


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
    run_id = Store(db).list_runs()[0].id
    at.selectbox(key=run_key(run_id, "live", "node")).set_value("r1-draft-0").run()
    at.selectbox(key=run_key(run_id, "live", "r1-draft-0", "diff_other")).set_value(
        "r1-draft-1").run()
    bodies = [h.proto.body for h in at.get("html")]
    assert bodies
    for body in bodies:
        assert "<script" not in body and "<img" not in body
    assert any("&lt;script&gt;" in body for body in bodies)


def _stored(db, n: int = 1, **config) -> list:
    import asyncio

    from pdr_core.run.methods import run

    store = Store(db)
    traces = []
    for i in range(n):
        traces.append(asyncio.run(run(f"What is {i} * 7?", RunConfig(**(config or {
            "method": "vote", "width": 3})), FakeProvider(), store.writer(),
            reference=str(i * 7))))
    return traces


def history() -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / "history.py"), default_timeout=30).run()


def test_history_lists_filters_opens_and_deletes(db):
    vote_runs = _stored(db, 2)
    [single] = _stored(db, 1, method="single")
    at = history()
    assert not at.exception
    assert at.selectbox(key="history_open").value == single.id  # newest first
    def listed():
        return [label.split(" · ")[1].split(" (")[0] + ":" + label.split(" · ")[3]
                for label in at.selectbox(key="history_open").options]

    assert listed() == ["single:What is 0 * 7?", "vote:What is 1 * 7?", "vote:What is 0 * 7?"]
    at.selectbox(key="history_method").set_value("vote").run()
    assert listed() == ["vote:What is 1 * 7?", "vote:What is 0 * 7?"]
    at.text_input(key="history_text").input("1 * 7").run()
    assert listed() == ["vote:What is 1 * 7?"]
    assert at.selectbox(key="history_open").value == vote_runs[1].id
    # the run view of the opened run
    assert at.selectbox(key=run_key(vote_runs[1].id, "history", "node")).options
    at.text_input(key="history_text").input("").run()
    at.selectbox(key="history_method").set_value("any").run()

    at.selectbox(key="history_open").set_value(vote_runs[0].id).run()
    at.button(key="history_delete").click().run()
    assert any("Delete run" in w.value for w in at.warning)
    assert len(Store(db).list_runs()) == 3  # nothing deleted before the confirmation
    at.button(key="history_delete_yes").click().run()
    assert [r.id for r in Store(db).list_runs()] == [single.id, vote_runs[1].id]
    assert not at.exception


def test_history_renames_and_tags(db):
    [trace] = _stored(db)
    at = history()
    at.text_input(key=run_key(trace.id, "history_name")).input("baseline")
    at.text_input(key=run_key(trace.id, "history_tags")).input("demo, aime")
    form_button = [b for b in at.button if b.label == "Save"][0]
    form_button.click().run()
    [summary] = Store(db).list_runs()
    assert (summary.name, summary.tags) == ("baseline", ("demo", "aime"))
    assert trace.id == summary.id


def test_history_import_refuses_a_broken_file_and_accepts_a_good_one(db):
    [trace] = _stored(db)
    before = Store(db).list_runs()
    at = history()
    at.file_uploader(key="history_import").set_value(
        ("bad.json", b'{"format": "pdr-trace/1", "id": "x"}', "application/json")).run()
    assert any("Not imported" in e.value and "missing the key" in e.value for e in at.error)
    assert Store(db).list_runs() == before
    at.file_uploader(key="history_import").set_value(
        ("good.json", trace.to_json().encode(), "application/json")).run()
    assert any("Imported as run" in m.value for m in at.success)
    runs = Store(db).list_runs()
    assert len(runs) == 2 and sum(r.imported for r in runs) == 1
    assert not at.exception


def test_history_opens_on_a_store_of_5000_runs_without_loading_texts(db):
    import json
    import sqlite3

    Store(db)
    long_question = "What is 6 * 7? " + "x" * 20_000
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO runs (id, created_at, updated_at, question, method, model, config,"
            " status, b_seq, b_total, calls) VALUES (?, ?, ?, ?, 'pdr', 'm', ?, 'completed',"
            " 1, 2, 3)",
            [(f"run{i:05d}", f"2026-01-01T00:00:{i % 60:02d}.{i:06d}", "x", long_question,
              json.dumps({"method": "pdr"})) for i in range(5000)],
        )
    summaries = Store(db).list_runs(limit=50)
    assert len(summaries) == 50 and all(len(r.question) <= 300 for r in summaries)
    assert Store(db).count_runs() == 5000
    at = AppTest.from_file(str(ROOT / "pages" / "history.py"), default_timeout=30)
    at.run()
    assert any("5000 run(s) match" in c.value for c in at.caption)
    assert len(at.selectbox(key="history_open").options) == 50
    # these generated rows have no events: the page says so instead of failing
    assert not at.exception
    assert any("no events" in e.value for e in at.error)


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
    messages = [plain(e.value) for e in at.error]
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
    job = started_job(at)
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


def test_history_resume_button_finishes_an_interrupted_run(db):


    store = Store(db)
    summary = interrupt_after(store, "What is 3 * 3?", RunConfig(method="pdr", width=2, depth=3),
                              FakeProvider(delay=0.1), 2, "9")
    done = sum(n.status == "ok" for n in summary.nodes)
    provider = FakeProvider()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    at.session_state["provider"] = provider
    at.run()
    at.switch_page("pages/history.py").run()
    assert any("interrupted" in i.value for i in at.info)
    at.button(key=run_key(summary.id, "history", "resume")).click().run()
    job = started_job(at)
    job.wait(timeout=30)
    at.run()
    assert not at.exception
    trace = store.get_trace(summary.id)
    assert trace.status == "completed" and trace.final_answer == "9"
    assert 0 < len(provider.calls) == RunConfig(method="pdr", width=2, depth=3).calls - done


def test_replay_plays_a_saved_run_back(db):
    import asyncio

    from pdr_core.run.methods import run

    trace = asyncio.run(run("What is 2 * 9?", RunConfig(method="pdr", width=2, depth=2),
                            FakeProvider(delay=0.3), Store(db).writer(), reference="18"))
    at = history()
    at.select_slider(key=run_key(trace.id, "history", "replay_speed")).set_value(1)
    at.button(key=run_key(trace.id, "history", "replay_play")).click().run()
    assert not at.exception
    # the first frame: the run as it stood at its start, still running
    assert at.get("progress")
    assert any(m.value.startswith("**Status**") and "running" in m.value for m in at.markdown)
    time.sleep(1.2)
    at.run()
    assert not at.exception
    assert any("Replay finished" in m.value for m in at.success)
    assert trace.status == "completed"


def test_replay_elapsed_counts_replay_time_not_time_since_the_run_was_made(db):
    import asyncio

    from pdr_core.run.methods import run

    trace = asyncio.run(run("What is 2 * 9?", RunConfig(method="vote", width=2),
                            FakeProvider(), Store(db).writer(), reference="18"))
    time.sleep(2.5)  # the run was made well before it is replayed
    at = history()
    at.select_slider(key=run_key(trace.id, "history", "replay_speed")).set_value(1)
    at.button(key=run_key(trace.id, "history", "replay_play")).click().run()
    assert not at.exception
    shown = [m.value for m in at.metric if m.label == "Elapsed"][-1]  # the replay frame's
    assert 0.0 <= float(shown.removesuffix(" s")) < 1.5, shown


def test_run_pickers_name_method_distill_and_shape(db):
    configs = {"pdr": {"method": "pdr", "width": 3, "depth": 2, "distill": "topk"},
               "sched": {"method": "pdr", "width_schedule": (4, 2, 1), "depth": 3},
               "vote": {"method": "vote", "width": 3}, "single": {"method": "single"}}
    ids = {name: _stored(db, 1, **config)[0].id for name, config in configs.items()}
    expected = {"pdr": " · pdr (topk, 3×2) · ", "sched": " · pdr (summary, 4×3, widths 4,2,1) · ",
                "vote": " · vote (width 3) · ", "single": " · single · "}
    at = history()
    options = at.selectbox(key="history_open").options
    shown = {label.rsplit(" · ", 1)[1]: label for label in options}
    for name, run_id in ids.items():
        assert expected[name] in shown[run_id], shown[run_id]
    at = AppTest.from_file(str(ROOT / "pages" / "compare.py"), default_timeout=30).run()
    options = at.selectbox(key="compare_a").options
    assert sorted(label.split(" · ")[1] for label in options) == sorted(
        e.strip(" ·") for e in expected.values())


def test_budget_table_has_titled_columns_and_no_none_cells(db):
    [trace] = _stored(db, 1, method="pdr", width=2, depth=2)
    at = history()
    [table] = [d.value for d in at.dataframe if "B_seq" in d.value.to_numpy()]
    assert list(table.columns) == ["", "Calls", "Prompt tokens", "Completion tokens", "Tokens",
                                   "Largest call", "Cap", "Share of cap", "Within cap"]
    cells = [str(v) for v in table.to_numpy().ravel()]
    assert "None" not in cells and "nan" not in cells
    b_seq = table[table[""] == "B_seq"].iloc[0]
    assert b_seq["Tokens"] == f"{trace.budget.b_seq:,}" and b_seq["Cap"] == "–"


def test_a_saved_run_has_no_latest_node_entry_and_opens_on_its_last_node(db):
    [done] = _stored(db, 1, method="pdr", width=2, depth=2)
    at = history()
    picker = at.selectbox(key=run_key(done.id, "history", "node"))
    assert not any(o.startswith("Latest finished node") for o in picker.options)
    assert picker.value == "r2-final-0"
    assert not any(plain(c.value).startswith("Showing ") for c in at.caption)
