"""The Evaluate page through AppTest, with the fake provider injected at our own seam."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import launch_evaluation, plain
from streamlit.testing.v1 import AppTest

from pdr_core.evals.generator import generate
from pdr_core.evals.records import list_evaluations
from pdr_core.store import Store
from pdr_core.testing import FakeProvider
from ui.state import run_key

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages" / "evaluate.py")


def page(provider: FakeProvider | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=30)
    if provider is not None:
        at.session_state["provider"] = provider
    return at.run()


def test_launch_a_tiny_evaluation_and_read_the_results(db):
    at = page(FakeProvider())
    assert not at.exception, at.exception
    assert at.title[0].value == "Evaluate"
    at.number_input(key="eval_gen_n").set_value(3)
    at.selectbox(key="eval_gen_kind").set_value("mod")
    at.multiselect(key="eval_methods").set_value(["single", "pdr"])
    at.multiselect(key="eval_widths").set_value([2])
    at.multiselect(key="eval_max_tokens").set_value([256])
    at.text_input(key="eval_name").input("tiny")
    at.run()
    assert not at.exception and not at.error
    runs = [m for m in at.metric if m.label == "Runs"]
    assert runs and runs[0].value == "6"  # 3 problems x (single, pdr summary w2 d2)

    launch_evaluation(at)
    assert not at.exception, at.exception

    [stored] = list_evaluations(Store(db))
    assert stored.name == "tiny" and stored.dataset == "gen:mod:3:medium:seed=0"
    assert at.selectbox(key="eval_view").value == stored.id
    assert len(Store(db).list_runs(text=f"eval:{stored.id}")) == 6
    completed = [m for m in at.metric if m.label == "Completed"]
    assert completed and completed[0].value == "6"
    charts = at.get("plotly_chart")
    assert len(charts) == 2, "accuracy vs B_seq and vs B_total"
    assert "Accuracy vs mean B_seq" in charts[0].proto.spec
    frames = [f.value for f in at.dataframe]  # problems, estimate, summary, per problem, runs
    [summary] = [f for f in frames if "arm" in f.columns]
    assert list(summary["arm"]) == ["single t256", "pdr summary w2 d2 t256"]
    assert list(summary["n"]) == ["3", "3"]
    # each arm's label names its own distill operator; no page-wide note repeats it
    assert not any("distill operator" in m.value for m in at.markdown)
    # Read as the command line prints it: percentages and rounded means, no snake_case.
    assert "mean B_seq" in summary.columns and "ci_low" not in summary.columns
    assert all(isinstance(c, str) for c in summary.to_numpy().ravel())
    assert all(re.fullmatch(r"\d{1,3}\.\d%", c) for c in summary["accuracy"])
    assert all(re.fullmatch(r"\d{1,3}\.\d%-\d{1,3}\.\d%", c) for c in summary["95% CI"])
    assert all(c.endswith("%") for c in summary["oracle"])
    [per_problem] = [f for f in frames if "reference" in f.columns and "problem" in f.columns]
    assert len(per_problem) == 3 and "pdr summary w2 d2 t256" in per_problem.columns
    [every_run] = [f for f in frames if "run_id" in f.columns]
    assert len(every_run) == 6 and set(every_run["status"]) == {"completed"}

    # the paired comparison with a chosen level
    assert at.selectbox(key="eval_cmp_a").value == "single t256"
    assert at.selectbox(key="eval_cmp_b").value == "pdr summary w2 d2 t256"
    at.select_slider(key="eval_alpha").set_value(0.1).run()
    verdicts = [m.value for m in [*at.info, *at.success] if "McNemar exact p" in m.value]
    assert verdicts and "0.1" in verdicts[0]
    downloads = at.get("download_button")
    assert len(downloads) == 3


def test_a_malformed_file_is_named_with_its_line(db, tmp_path, monkeypatch):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "question": "q", "answer": "1"}\nnot json\n')
    monkeypatch.setenv("PDR_DATA_DIR", str(tmp_path))
    at = page(FakeProvider())
    at.radio(key="eval_source").set_value("File or spec").run()
    at.text_input(key="eval_path").input("bad.jsonl").run()
    assert not at.exception
    assert any("line 2: not valid JSON" in plain(e.value) for e in at.error)
    assert at.button(key="eval_launch").disabled


def test_resume_from_the_page_runs_only_what_is_missing(db):
    target = generate("arith", 4)[1].question
    provider = FakeProvider(fail=lambda messages, seed: "boom" if target in messages[-1]["content"]
                            else None)
    at = page(provider)
    at.number_input(key="eval_gen_n").set_value(4)
    at.multiselect(key="eval_methods").set_value(["single"])
    at.multiselect(key="eval_max_tokens").set_value([128])
    at.run()
    launch_evaluation(at)
    assert next(m.value for m in at.metric if m.label == "Failed") == "1"
    calls = len(provider.calls)
    provider.fail = None
    at.button(key="eval_resume").click().run()
    [job] = at.session_state["eval_jobs"].values()
    job.wait(timeout=30)
    at.run()
    assert not at.exception
    assert len(provider.calls) == calls + 1  # only the failed run again
    assert next(m.value for m in at.metric if m.label == "Completed") == "4"


def test_page_is_in_the_navigation_and_keeps_its_settings(db):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    at.session_state["provider"] = FakeProvider()
    at.run()
    at.switch_page("pages/evaluate.py").run()
    assert not at.exception and at.title[0].value == "Evaluate"
    at.multiselect(key="eval_methods").set_value(["sr"]).run()
    at.switch_page("pages/run.py").run()
    assert at.title[0].value == "Run"
    at.switch_page("pages/evaluate.py").run()
    assert at.multiselect(key="eval_methods").value == ["sr"]
    # kept where every page keeps its widgets' values (ui.state), not in a store of its own
    assert at.session_state["kept_values"]["eval_methods"] == ["sr"]


def test_the_built_in_benchmarks_are_offered_and_evaluate_offline(db):
    at = page(FakeProvider())
    at.radio(key="eval_source").set_value("Built-in benchmark").run()
    picker = at.selectbox(key="eval_benchmark")
    assert picker.options == ["AIME 2024 · 30 problems", "AIME 2025 · 30 problems",
                              "MATH-500 · 500 problems", "GSM8K (test) · 1319 problems",
                              "HumanEval (code: programs graded by their tests)"]
    picker.set_value("math500").run()
    assert not at.exception and not at.error
    at.number_input(key="eval_limit").set_value(2)
    at.multiselect(key="eval_methods").set_value(["single"])
    at.multiselect(key="eval_max_tokens").set_value([128])
    at.run()
    assert next(m.value for m in at.metric if m.label == "Runs") == "2"
    launch_evaluation(at)
    [stored] = list_evaluations(Store(db))
    assert stored.dataset == "math500" and stored.problems == 2
    frames = [f.value for f in at.dataframe]
    [per_problem] = [f for f in frames if "reference" in f.columns and "problem" in f.columns]
    assert list(per_problem["problem"]) == ["math500-001", "math500-002"]


def test_each_problem_links_to_its_runs_and_history_hides_evaluation_runs(db):
    import asyncio

    from pdr_core.config import RunConfig
    from pdr_core.evals.records import create_evaluation
    from pdr_core.evals.results import collect_results
    from pdr_core.evals.run import run_evaluation
    from pdr_core.evals.spec import EvalSpec
    from pdr_core.run.methods import run

    store = Store(db)
    evaluation = create_evaluation(store, EvalSpec("gen:mod:2", methods=("single", "vote"),
                                                   widths=(2,)), generate("mod", 2))
    asyncio.run(run_evaluation(store, evaluation, FakeProvider()))
    [own] = [asyncio.run(run("What is 2 + 2?", RunConfig(method="single"), FakeProvider(),
                             store.writer()))]
    runs = {(r.problem_id, r.label): r.run_id for r in collect_results(store, evaluation)}
    assert len(runs) == 4

    at = page(FakeProvider())
    frames = [f.value for f in at.dataframe]
    [table] = [f for f in frames if "reference" in f.columns and "problem" in f.columns]
    for _, row in table.iterrows():
        for label in ("single t1024", "vote w2 t1024"):
            assert row[f"{label} run"] == f"history?run={runs[(row['problem'], label)]}"

    history = AppTest.from_file(str(ROOT / "pages" / "history.py"), default_timeout=30).run()
    opened = history.selectbox(key="history_open")
    assert (opened.value, len(opened.options)) == (own.id, 1)  # evaluation runs hidden
    assert any("4 run(s) of evaluations hidden" in c.value for c in history.caption)
    history.checkbox(key="history_evals").check().run()
    assert len(history.selectbox(key="history_open").options) == 5

    # the link from the Evaluate page: opens that run, though the filter hides its kind
    linked = runs[(table["problem"][1], "vote w2 t1024")]
    history = AppTest.from_file(str(ROOT / "pages" / "history.py"), default_timeout=30)
    history.query_params["run"] = linked
    history.run()
    assert not history.exception
    assert not history.checkbox(key="history_evals").value
    assert history.selectbox(key="history_open").value == linked
    # its run view is drawn
    assert history.selectbox(key=run_key(linked, "history", "node")).options
    # picking another run puts that one in the address
    history.selectbox(key="history_open").set_value(own.id).run()
    assert history.query_params["run"] in (own.id, [own.id])
    # the linked run was shown for the link only: the filter hides it again
    assert len(history.selectbox(key="history_open").options) == 1


def path_errors(at: AppTest, path: str) -> list[str]:
    at.text_input(key="eval_path").input(path).run()
    assert not at.exception
    return [plain(e.value) for e in at.error]


def test_the_path_field_reads_only_the_data_folder_and_reveals_nothing_else(
        db, tmp_path, monkeypatch):
    good = '{"id": "a", "question": "What is 1 + 1?", "answer": "2"}\n'
    outside = tmp_path / "secret.jsonl"
    outside.write_text(good)
    monkeypatch.delenv("PDR_DATA_DIR", raising=False)
    at = page(FakeProvider())
    at.radio(key="eval_source").set_value("File or spec").run()
    # No data folder: no server path is read, and an existing file reads like a missing one.
    there, missing = path_errors(at, str(outside)), path_errors(at, str(tmp_path / "no.jsonl"))
    assert there == missing and "upload" in there[0] and "PDR_DATA_DIR" in there[0]
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "ok.jsonl").write_text(good)
    (folder / "out.jsonl").symlink_to(outside)
    monkeypatch.setenv("PDR_DATA_DIR", str(folder))
    at = page(FakeProvider())
    at.radio(key="eval_source").set_value("File or spec").run()
    for escape in (str(outside), "../secret.jsonl", "out.jsonl"):
        [error] = path_errors(at, escape)
        assert "not in the data folder" in error, escape
    [error] = path_errors(at, "nothing.jsonl")
    assert "no file 'nothing.jsonl' in the data folder" in error and "ok.jsonl" in error
    assert "not a Hugging Face dataset id" in path_errors(at, f"hf:{folder}")[0]
    assert path_errors(at, "ok.jsonl") == []
    assert not at.button(key="eval_launch").disabled


def test_the_matched_budget_preset_sets_every_method_and_the_matched_passes(db):
    at = page(FakeProvider())
    at.number_input(key="eval_gen_n").set_value(2)
    at.multiselect(key="eval_widths").set_value([3])
    at.button(key="eval_preset_matched-methods").click().run()
    assert not at.exception, at.exception
    assert at.multiselect(key="eval_methods").value == ["vote", "sr", "pdr", "rsa",
                                                        "tournament"]
    assert at.checkbox(key="eval_matched_bseq").value is True
    assert at.multiselect(key="eval_widths").value == [3]  # the rest stays as chosen
    runs = [m for m in at.metric if m.label == "Runs"]
    # 2 problems x (pdr, sr, vote, rsa, tournament, a single pass at pdr's and at sr's B_seq)
    assert runs and runs[0].value == "14"
    [table] = [f.value for f in at.dataframe if "Arm" in f.value.columns]
    assert list(table.columns) == ["Arm", "Runs", "Calls", "Worst-case B_seq",
                                   "Worst-case B_total", "Cost estimate"]
    # each arm's label names its own distill operator, where its method uses one
    assert "pdr summary w3 d2 t1024" in list(table["Arm"])
    assert "rsa w3 d2 t1024" in list(table["Arm"])
