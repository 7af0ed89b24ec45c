"""Code tasks in the app (AppTest): the Settings switch for running model code, the Run
page's HumanEval picker, and a node's program, test results and line diff."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import plain, started_job
from streamlit.testing.v1 import AppTest

from pdr_core.code.executor import ENV_VAR
from pdr_core.code.problems import load_humaneval
from pdr_core.store import Store
from pdr_core.testing import FakeProvider
from ui.code_view import ALLOW, ENTRY_POINT, OWN, PROBLEM, TESTS
from ui.state import run_key

ROOT = Path(__file__).resolve().parent.parent
ZERO = next(p for p in load_humaneval() if p.id == "HumanEval/0")
WRONG = "def has_close_elements(numbers, threshold):\n    return True\n"
RIGHT = ZERO.question + ZERO.reference_solution


def fenced(seed: int | None) -> str:
    return f"\n```python\n{RIGHT if seed == 0 else WRONG}```\n"


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)


def test_the_execution_switch_is_off_by_default_and_says_where_code_runs(db, no_env):
    at = AppTest.from_file(str(ROOT / "pages" / "settings.py"), default_timeout=30).run()
    assert not at.exception
    toggle = at.toggle(key=ALLOW)
    assert toggle.value is False and not toggle.disabled
    assert any("on the server running this app" in plain(c.value) for c in at.caption)
    toggle.set_value(True).run()
    assert at.session_state["kept_values"][ALLOW] is True


def run_humaneval(at: AppTest, execute: bool) -> AppTest:
    if execute:
        at.switch_page("pages/settings.py").run()
        at.toggle(key=ALLOW).set_value(True).run()
        at.switch_page("pages/run.py").run()
    at.selectbox(key=PROBLEM).set_value("HumanEval/0").run()
    assert at.text_area(key="question").value == ZERO.question
    at.radio(key="method").set_value("vote").run()
    at.slider(key="width").set_value(2).run()
    at.button(key="run_button").click().run()
    started_job(at).wait(timeout=60)
    return at.run()


def test_a_humaneval_run_shows_each_nodes_program_tests_and_line_diff(db, no_env):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state["provider"] = FakeProvider(answer=lambda m, seed: fenced(seed))
    at = run_humaneval(at.run(), execute=True)
    assert not at.exception, at.exception
    [summary] = Store(db).list_runs()
    trace = Store(db).get_trace(summary.id)
    assert trace.task["id"] == "HumanEval/0" and trace.correct is True
    assert any("Final answer:** program passing 7 of 7 tests" in m.value for m in at.markdown)
    picker = at.selectbox(key=run_key(summary.id, "live", "node"))
    picker.set_value("r1-draft-1").run()
    assert not at.exception, at.exception
    wrong = trace.node("r1-draft-1")
    assert any(c.language == "python" and c.value.strip() == wrong.answer.strip()
               for c in at.code)
    assert any("status failed · 4 of 7 tests passed" in plain(m.value) for m in at.markdown)
    [table] = [d.value for d in at.dataframe if "result" in d.value.columns]
    assert list(table["result"]).count("✗ failed") == 3
    assert "the candidate gave True" in " ".join(table["message"])
    at.selectbox(key=run_key(summary.id, "live", "r1-draft-1", "diff_other")) \
        .set_value("r1-draft-0").run()
    diff = [c for c in at.code if c.language == "diff"]
    assert diff and "+    return True" in diff[0].value
    assert any("lines" in plain(m.value) and "Against r1-draft-0" in plain(m.value)
               for m in at.markdown)


def test_with_execution_off_the_node_says_nothing_ran(db, no_env):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state["provider"] = FakeProvider(answer=lambda m, seed: fenced(seed))
    at = run_humaneval(at.run(), execute=False)
    assert not at.exception, at.exception
    [summary] = Store(db).list_runs()
    at.selectbox(key=run_key(summary.id, "live", "node")).set_value("r1-draft-0").run()
    assert any("Not run: code execution is off" in plain(i.value) for i in at.info)
    assert Store(db).get_trace(summary.id).correct is None


SQUARE_TESTS = ("def check(candidate):\n    assert candidate(3) == 9\n"
                "    assert candidate(-2) == 4\n")


def test_a_code_problem_typed_in_by_hand_runs_against_its_tests(db, no_env):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state["provider"] = FakeProvider(
        answer=lambda m, seed: "\n```python\ndef square(x):\n    return x * x\n```\n")
    at.run()
    at.switch_page("pages/settings.py").run()
    at.toggle(key=ALLOW).set_value(True).run()
    at.switch_page("pages/run.py").run()
    at.selectbox(key=PROBLEM).set_value(OWN).run()
    at.text_area(key="question").input("Write square(x), returning x times x.").run()
    at.radio(key="method").set_value("single").run()
    # Incomplete: no entry point and no tests yet. Nothing starts; the page says why.
    at.button(key="run_button").click().run()
    assert any("Complete the code problem first" in plain(e.value) for e in at.error)
    assert Store(db).list_runs() == []
    at.text_input(key=ENTRY_POINT).input("square").run()
    at.text_area(key=TESTS).input(SQUARE_TESTS).run()
    at.button(key="run_button").click().run()
    started_job(at).wait(timeout=60)
    at.run()
    assert not at.exception, at.exception
    [summary] = Store(db).list_runs()
    trace = Store(db).get_trace(summary.id)
    assert trace.task["entry_point"] == "square" and trace.task["tests"] == SQUARE_TESTS
    assert trace.question == "Write square(x), returning x times x."
    final = trace.node("r1-final-0")
    assert final.tests["status"] == "passed" and len(final.tests["tests"]) == 2
    assert trace.correct is True
