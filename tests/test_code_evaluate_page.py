"""A code dataset on the Evaluate page (AppTest, widgets by key): HumanEval is offered,
programs run only when execution is switched on, and the results read as pass@1 against
mean B_seq and B_total per arm, the per-problem table, and oracle pass against final pass."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import launch_evaluation, plain
from streamlit.testing.v1 import AppTest

from pdr_core.code.executor import ENV_VAR
from pdr_core.code.problems import load_humaneval
from pdr_core.evals.records import list_evaluations, load_evaluation
from pdr_core.store import Store
from pdr_core.testing import FakeProvider

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages" / "evaluate.py")
PROBLEMS = load_humaneval(limit=2)


def scripted(messages, seed):
    """HumanEval/0: its canonical solution on every branch. HumanEval/1: only branch 2
    writes the canonical solution; the others return None, all alike."""
    user = "\n".join(m["content"] for m in messages if m["role"] == "user")
    problem = next(p for p in PROBLEMS if p.question.strip() in user)
    right = problem.id == "HumanEval/0" or (seed or 0) % 1000 == 2
    body = problem.reference_solution if right else "    return None\n"
    return f"\n```python\n{problem.question}{body}```\n"


def opened(monkeypatch, execute: bool) -> AppTest:
    """The Evaluate page on the scripted fake provider, code execution on or off."""
    if execute:
        monkeypatch.setenv(ENV_VAR, "1")  # as a server deployment switches it on
    else:
        monkeypatch.delenv(ENV_VAR, raising=False)
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["provider"] = FakeProvider(answer=scripted)
    return at.run()


def humaneval_page(monkeypatch, execute: bool) -> AppTest:
    at = opened(monkeypatch, execute)
    at.radio(key="eval_source").set_value("Built-in benchmark").run()
    at.selectbox(key="eval_benchmark").set_value("humaneval").run()
    at.number_input(key="eval_limit").set_value(2)
    at.multiselect(key="eval_methods").set_value(["single", "vote"])
    at.multiselect(key="eval_widths").set_value([3])
    at.multiselect(key="eval_max_tokens").set_value([2048])
    return at.run()


def launch(at: AppTest) -> AppTest:
    return launch_evaluation(at, timeout=120)


def table(at: AppTest, column: str):
    [found] = [f.value for f in at.dataframe if column in f.value.columns]
    return found


def test_humaneval_reads_as_pass_at_1_against_budget_with_oracle_against_final(
        db, monkeypatch):
    at = humaneval_page(monkeypatch, execute=True)
    assert not at.exception and not at.error
    assert "HumanEval" in at.selectbox(key="eval_benchmark").format_func("humaneval")
    assert any("runs against its tests" in plain(c.value) for c in at.caption)
    # The feedback operator is offered for code problems.
    assert "feedback" in at.selectbox(key="eval_distill").options
    at = launch(at)
    [stored] = list_evaluations(Store(db))
    evaluation = load_evaluation(Store(db), stored.id)
    assert stored.dataset == "humaneval" and evaluation.spec.execute_code

    charts = at.get("plotly_chart")
    assert "pass@1 vs mean B_seq" in charts[0].proto.spec
    assert "pass@1 vs mean B_total" in charts[1].proto.spec
    summary = table(at, "arm")
    assert list(summary.columns[:7]) == ["arm", "n", "pass@1", "95% CI", "mean B_seq",
                                         "mean B_total", "oracle"]
    arms = {row["arm"]: row for row in summary.to_dict("records")}
    single, vote = arms["single t2048"], arms["vote w3 t2048"]
    # single: HumanEval/1 fails and nothing else was written. vote: one draft of three
    # passes HumanEval/1, but the two failing ones behave alike and outvote it.
    assert (single["pass@1"], single["oracle"]) == ("50.0%", "50.0%")
    assert (vote["pass@1"], vote["oracle"]) == ("50.0%", "100.0%")
    assert all(int(row["mean B_seq"].replace(",", "")) > 0 for row in arms.values())
    assert int(vote["mean B_total"].replace(",", "")) > int(vote["mean B_seq"].replace(",", ""))
    assert any("oracle: share where any program a run wrote passed, against that final pass"
               in m.value for m in at.markdown)
    per_problem = table(at, "problem").set_index("problem")
    assert per_problem.loc["HumanEval/0", "vote w3 t2048"] == "right"
    assert per_problem.loc["HumanEval/1", "single t2048"] == "wrong"
    assert per_problem.loc["HumanEval/1", "vote w3 t2048"] == "wrong (a draft was right)"


def test_with_execution_off_nothing_runs_and_the_page_says_why(db, monkeypatch):
    at = humaneval_page(monkeypatch, execute=False)
    assert any("Code execution is off" in plain(w.value) for w in at.warning)
    at = launch(at)
    [stored] = list_evaluations(Store(db))
    assert not load_evaluation(Store(db), stored.id).spec.execute_code
    assert any("no program ran" in plain(i.value) for i in at.info)
    summary = table(at, "arm")
    assert set(summary["pass@1"]) == {"-"} and set(summary["oracle"]) == {"-"}
    per_problem = table(at, "problem")
    assert set(per_problem["single t2048"]) == {"not graded"}


@pytest.mark.parametrize("source", ["Generator", "Built-in benchmark"])
def test_feedback_is_not_offered_for_a_math_dataset(db, monkeypatch, source):
    at = humaneval_page(monkeypatch, execute=True)
    at.selectbox(key="eval_distill").set_value("feedback").run()
    at.radio(key="eval_source").set_value(source).run()
    if source == "Built-in benchmark":
        at.selectbox(key="eval_benchmark").set_value("math500").run()
    assert not at.exception, at.exception
    assert "feedback" not in at.selectbox(key="eval_distill").options
    assert at.selectbox(key="eval_distill").value == "summary"


def test_a_code_file_in_the_data_folder_is_a_code_dataset(db, monkeypatch, tmp_path):
    row = ('{"id": "sq", "question": "def square(x):\\n", "entry_point": "square", '
           '"tests": "def check(candidate):\\n    assert candidate(3) == 9\\n"}\n')
    (tmp_path / "mine.jsonl").write_text(row)
    monkeypatch.setenv("PDR_DATA_DIR", str(tmp_path))
    at = opened(monkeypatch, execute=False)
    at.radio(key="eval_source").set_value("File or spec").run()
    at.text_input(key="eval_path").input("mine.jsonl").run()
    assert not at.exception and not at.error
    assert "feedback" in at.selectbox(key="eval_distill").options
    assert any("Code execution is off" in plain(w.value) for w in at.warning)
    preview = table(at, "question")
    assert list(preview["answer"]) == ["square"]  # its entry point: the tests grade it
