"""A method's own declared settings in Evaluate: eval flags generated from the declaration,
swept as EvalSpec.method_settings, carried into each arm's run, named in its label, part of
the evaluation's identity, and drawn as controls on the Evaluate page. The plugin is the
worked example of docs/METHODS.md (tests/test_method_plugins.py)."""

from __future__ import annotations

import csv
import json

import pytest
from conftest import launch_evaluation
from openai_server import OpenAIServer
from test_cli import cli
from test_method_plugins import QUESTION, REF, _env, installed, plugin_dir  # noqa: F401

from pdr_core.config import ConfigError
from pdr_core.evals.spec import EvalSpec
from pdr_core.store import Store
from pdr_core.testing import FakeProvider


def _dataset(tmp_path):
    data = tmp_path / "set.jsonl"
    rows = [{"id": "add", "question": QUESTION, "answer": "52"},
            {"id": "mul", "question": "What is 6 * 7?", "answer": "42"}]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return data


def _calls(server) -> int:
    # the calls, not the one-token probe of `n` a new endpoint gets
    return sum(r["body"].get("n", 1) for r in server.chat_requests
               if r["body"].get("max_tokens") != 1)


def _rows(path):
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_a_plugins_setting_swept_from_the_command_line(plugin_dir, tmp_path):  # noqa: F811
    db, out, data = tmp_path / "runs.sqlite", tmp_path / "out", _dataset(tmp_path)
    with OpenAIServer() as server:
        base = ("eval", str(data), "--methods", REF, "--max-tokens", "256",
                "--base-url", server.base_url, "--model", "fake-model", "--out", str(out),
                "--eval-id", "swept")
        result = cli(*base, "--n", "2,3", "--prefer", "longest", db=db,
                     env_extra=_env(plugin_dir))
        assert result.returncode == 0, result.stderr
        assert _calls(server) == 2 * (2 + 3)  # two problems, an arm of n=2 and one of n=3

        results = _rows(out / "results.csv")
        settings = sorted(r["settings"] for r in results)
        assert settings == 2 * [json.dumps({"n": 2, "prefer": "longest"})] + 2 * [
            json.dumps({"n": 3, "prefer": "longest"})]
        store = Store(db)
        for row in results:  # each arm's run made the calls its own n declares
            trace = store.get_trace(row["run_id"])
            declared = json.loads(row["settings"])
            assert trace.config["method_settings"] == declared
            assert trace.budget.calls == declared["n"]
        assert len({r["run_id"] for r in results}) == 4
        labels = [line.split()[0:4] for line in result.stdout.splitlines()[1:]]
        assert [" ".join(x) for x in labels] == [f"{REF} t256 n=2 prefer=longest",
                                                  f"{REF} t256 n=3 prefer=longest"]

        # resumed with the same settings: nothing runs again; with others: refused
        again = cli(*base, "--n", "2", "--n", "3", "--prefer", "longest", db=db,
                    env_extra=_env(plugin_dir))
        assert again.returncode == 0, again.stderr
        assert _calls(server) == 10
        other = cli(*base, "--n", "2,4", "--prefer", "longest", db=db,
                    env_extra=_env(plugin_dir))
        assert other.returncode == 2 and "other settings (method_settings" in other.stderr
        assert _calls(server) == 10

        for flags, message in [(("--n", "0"), "n=0 is invalid: a whole number from 1 to 16"),
                               (("--n", "two"), "n='two' is invalid: a whole number"),
                               (("--votes", "3"), "a setting of one of the methods: n, "
                                                  "prefer")]:
            bad = cli(*base[:-1], "bad", *flags, db=db, env_extra=_env(plugin_dir))
            assert bad.returncode == 2 and message in bad.stderr, bad.stderr
        assert _calls(server) == 10


def test_built_in_settings_sweep_and_old_evaluations_keep_their_identity():
    spec = EvalSpec(dataset="x", methods=("tournament", "pdr"),
                    method_settings={"votes": [1, 3]})
    arms = spec.settings()
    assert [a.label for a in arms] == ["tournament w4 t1024 votes=1",
                                       "tournament w4 t1024 votes=3", "pdr summary w4 d2 t1024"]
    assert [spec.config(a).votes for a in arms] == [1, 3, 1]
    assert EvalSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    # an evaluation stored before the field existed is the same evaluation
    plain = EvalSpec(dataset="x")
    stored = plain.to_dict()
    stored.pop("method_settings")
    assert EvalSpec.from_dict(stored).identity() == plain.identity()
    assert "method_settings" not in plain.identity()
    with pytest.raises(ConfigError, match="width is the evaluation's own"):
        EvalSpec(dataset="x", methods=("pdr",), method_settings={"width": [2]})


def test_the_evaluate_page_sweeps_a_plugins_setting(installed, db):  # noqa: F811
    from test_evaluate_page import page

    at = page(FakeProvider())
    at.number_input(key="eval_gen_n").set_value(2)
    at.multiselect(key="eval_methods").set_value([REF])
    at.run()
    assert not at.exception, at.exception
    assert at.text_input(key="eval_sweep_n").value == "4"  # the declared default
    assert at.multiselect(key="eval_sweep_prefer").value == ["shortest"]
    at.text_input(key="eval_sweep_n").input("2,3").run()
    [table] = [f.value for f in at.dataframe if "Arm" in f.value.columns]
    assert list(table["Arm"]) == [f"{REF} t1024 n=2", f"{REF} t1024 n=3"]
    assert list(table["Calls"]) == ["4", "6"]  # 2 problems x n
    at.text_input(key="eval_sweep_n").input("2,99").run()
    assert any("n=99 is invalid" in e.value for e in at.error)
    at.text_input(key="eval_sweep_n").input("2,3").run()

    launch_evaluation(at)
    assert not at.exception, at.exception
    store = Store(db)
    calls = sorted((r.config["method_settings"]["n"], r.budget.calls)
                   for r in map(store.get_trace, (s.id for s in store.list_runs())))
    assert calls == [(2, 2), (2, 2), (3, 3), (3, 3)]


def test_arms_differing_by_an_own_setting_are_separate_lines_of_the_accuracy_figure():
    from pdr_core.evals.figure import accuracy_figure
    from pdr_core.evals.results import SummaryRow

    def arm(n: int, width: int, accuracy: float) -> SummaryRow:
        return SummaryRow(REF, width, 1, 256, 4, accuracy, 0.0, 1.0, 100.0 * width,
                          400.0 * width, own=(("n", n),))

    rows = [arm(2, 2, 0.5), arm(3, 2, 0.75), arm(2, 4, 0.6), arm(3, 4, 1.0)]
    figure = accuracy_figure(rows)
    lines = {trace.name: list(trace.y) for trace in figure.data}
    assert lines == {f"{REF} n=2": [0.5, 0.6], f"{REF} n=3": [0.75, 1.0]}
