"""The Prompts page and prompt sets on the Run page, through AppTest."""

from pathlib import Path

from conftest import started_job
from streamlit.testing.v1 import AppTest

from pdr_core.store import Store
from pdr_core.testing import FakeProvider

ROOT = Path(__file__).resolve().parent.parent


def test_templates_are_checked_and_saved_as_versions(db):
    at = AppTest.from_file(str(ROOT / "pages" / "prompts.py"), default_timeout=30).run()
    assert not at.exception
    assert "{question}" in at.text_area(key="prompt_draft").value
    at.text_area(key="prompt_draft").input("Solve {question} using {hint}").run()
    [error] = at.error
    assert "unknown variable(s) {hint}" in error.value and "'draft'" in error.value
    assert at.button(key="prompts_save").disabled
    at.text_area(key="prompt_refine").input("No workspace here: {question}").run()
    at.text_area(key="prompt_draft").input("Think step by step.\n{question}").run()
    assert any("must use {workspace}" in e.value for e in at.error)
    at.text_area(key="prompt_refine").input("{question}\nNotes:\n{workspace}").run()
    assert not at.error
    at.text_input(key="prompts_name").input("careful").run()
    at.button(key="prompts_save").click().run()
    assert any("version 1" in s.value for s in at.success)
    at.button(key="prompts_save").click().run()
    assert Store(db).prompt_sets() == {"careful": 2}
    assert Store(db).prompt_set("careful").draft == "Think step by step.\n{question}"


def test_a_run_records_the_prompt_set_it_used(db):
    from pdr_core.prompts import PromptSet

    Store(db).save_prompt_set("terse", PromptSet(draft="Answer only.\n{question}"))
    provider = FakeProvider()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    at.session_state["provider"] = provider
    at.run()
    at.selectbox(key="prompt_set").set_value("terse")
    at.text_area(key="question").input("What is 4 + 4?")
    at.radio(key="method").set_value("single").run()
    at.button(key="run_button").click().run()
    job = started_job(at)
    trace = job.wait(timeout=30)
    assert trace.nodes[0].messages[-1]["content"] == "Answer only.\nWhat is 4 + 4?"
    assert trace.config["prompts"]["draft"] == "Answer only.\n{question}"


def test_literal_json_braces_get_a_hint_under_their_own_template(db):
    at = AppTest.from_file(str(ROOT / "pages" / "prompts.py"), default_timeout=30).run()
    at.text_area(key="prompt_select").input(
        '{question}\n{candidates}\nReply as {"best": 1}').run()
    [error] = at.error
    assert "{{" in error.value and "}}" in error.value and "'select'" in error.value
    # The message sits under the select template, before the next template's box.
    order = [getattr(e, "key", None) or e.type for e in at.main if e.type in
             ("text_area", "error")]
    assert order.index("error") == order.index("prompt_select") + 1
    at.text_area(key="prompt_select").input(
        '{question}\n{candidates}\nReply as {{"best": 1}}').run()
    assert not at.error and not at.button(key="prompts_save").disabled
