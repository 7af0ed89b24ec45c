"""The method API: flags generated from declarations, a plugin method by module:function
and by entry point, run end to end over HTTP, stored, loaded and resumed. The plugin is the
worked example of docs/METHODS.md, read from the doc's code block."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from openai_server import OpenAIServer
from test_cli import cli

from pdr_core.config import ADAPTIVE_METHODS, ConfigError, RunConfig
from pdr_core.events import RunFinished
from pdr_core.fold import fold
from pdr_core.run.methods import resume
from pdr_core.run.registry import BUILTINS, get_method, method_registry
from pdr_core.store import Store
from pdr_core.testing import FakeProvider

ROOT = Path(__file__).resolve().parents[1]
REF = "best_of_length:best_of_length"
QUESTION = "What is 17 * 3 + 1?"


def example_source() -> str:
    doc = (ROOT / "docs" / "METHODS.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- example: best_of_length\.py -->\n```python\n(.*?)```", doc,
                      re.DOTALL)
    assert match, "docs/METHODS.md lost its worked example"
    return match.group(1)


@pytest.fixture
def plugin_dir(tmp_path):
    folder = tmp_path / "plugin"
    folder.mkdir()
    (folder / "best_of_length.py").write_text(example_source(), encoding="utf-8")
    return folder


@pytest.fixture
def installed(plugin_dir, monkeypatch):
    """The example as an installed package: a real dist-info folder with its entry point."""
    info = plugin_dir / "best_of_length_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: best-of-length-plugin\n"
                                   "Version: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(
        f"[pdr_inspector.methods]\nbest-of-length = {REF}\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(plugin_dir))
    method_registry.cache_clear()
    yield plugin_dir
    method_registry.cache_clear()


def _env(folder: Path) -> dict:
    return {"PYTHONPATH": f"{ROOT}:{folder}"}


def _fields(result):
    return dict(line.split(": ", 1) for line in result.stdout.strip().splitlines())


def test_built_in_declarations_agree_with_the_config():
    assert tuple(m.name for m in BUILTINS if m.adaptive) == ADAPTIVE_METHODS
    assert get_method("rsa").uses("k") and not get_method("single").settings
    # a built-in's trace config is as it was: no method_settings key
    assert "method_settings" not in RunConfig(method="rsa", width=4, k=2).to_dict()


def test_declared_settings_become_flags_with_bounds(plugin_dir, tmp_path):
    db = tmp_path / "runs.sqlite"
    helped = cli("run", "--method", REF, "--help", db=db, env_extra=_env(plugin_dir))
    assert helped.returncode == 0, helped.stderr
    text = " ".join(helped.stdout.split())
    assert "--n N drafts to sample [best-of-length; a whole number from 1 to 16, default 4]" \
        in text
    assert "--prefer {shortest,longest}" in text
    with OpenAIServer() as server:
        endpoint = ("--base-url", server.base_url, "--model", "fake-model")
        for flags, message in [
            (("--n", "0"), "error: n=0 is invalid: a whole number from 1 to 16"),
            (("--n", "17"), "n=17 is invalid"),
            (("--n", "two"), "argument --n: invalid int value: 'two'"),
            (("--prefer", "middle"), "argument --prefer: invalid choice: 'middle'"),
        ]:
            result = cli("run", QUESTION, "--method", REF, *flags, *endpoint, db=db,
                         env_extra=_env(plugin_dir))
            assert result.returncode == 2 and message in result.stderr, result.stderr
        missing = cli("run", QUESTION, "--method", "no_such_module:fn", *endpoint, db=db)
        assert missing.returncode == 2 and "an importable module" in missing.stderr
        assert server.chat_requests == []


def test_a_plugin_by_reference_runs_is_stored_and_resumes(plugin_dir, tmp_path,
                                                          monkeypatch):
    db = tmp_path / "runs.sqlite"
    out = tmp_path / "trace.json"
    with OpenAIServer() as server:
        result = cli("run", QUESTION, "--answer", "52", "--method", REF, "--n", "3",
                     "--prefer", "longest", "--base-url", server.base_url, "--model",
                     "fake-model", "--out", str(out), db=db, env_extra=_env(plugin_dir))
        assert result.returncode == 0, result.stderr
        # the calls, not the one-token probe of `n` a new endpoint gets
        assert sum(r["body"].get("n", 1) for r in server.chat_requests
                   if r["body"].get("max_tokens") != 1) == 3
    fields = _fields(result)
    assert fields["calls"] == "3" and fields["answer"] == "52"
    assert fields["selection"].startswith("best of 3 by length: r1-draft-")
    trace = Store(db).get_trace(fields["run"])
    assert trace.config["method"] == REF
    assert trace.config["method_settings"] == {"n": 3, "prefer": "longest"}
    assert json.loads(out.read_text())["config"]["method_settings"] == {"n": 3,
                                                                        "prefer": "longest"}
    assert trace.run_config.method_settings == {"n": 3, "prefer": "longest"}
    shown = cli("show", fields["run"], db=db)
    assert shown.returncode == 0 and REF in shown.stdout

    # resumed in this process: the finished drafts are kept, the rest called again
    monkeypatch.syspath_prepend(str(plugin_dir))
    events = Store(db).events(fields["run"])
    cut = [e for e in events if not isinstance(e, RunFinished)][:-2]
    partial = fold(cut)
    partial.status = "interrupted"
    again = FakeProvider()
    resumed = asyncio.run(resume(partial, cut, again))
    assert resumed.status == "completed" and len(resumed.nodes) == 3
    assert len(again.calls) < 3


def test_a_plugins_settings_are_checked_before_a_run():
    method = get_method("pdr")
    with pytest.raises(ConfigError, match="method_settings"):
        RunConfig(method="pdr", method_settings={"n": 3})
    assert method.prepare(RunConfig()) == RunConfig()


def test_an_installed_entry_point_shows_up_and_runs(installed, tmp_path):
    assert REF in method_registry()
    assert get_method("best-of-length").key == REF
    with pytest.raises(ConfigError, match="n=99 is invalid"):
        get_method(REF).prepare(RunConfig(method=REF, method_settings={"n": 99}))
    db = tmp_path / "runs.sqlite"
    helped = cli("run", "--help", db=db, env_extra=_env(installed))
    assert "best-of-length" in helped.stdout and "--prefer" in helped.stdout
    with OpenAIServer() as server:
        result = cli("run", QUESTION, "--method", "best-of-length", "--n", "2", "--base-url",
                     server.base_url, "--model", "fake-model", db=db,
                     env_extra=_env(installed))
        assert result.returncode == 0, result.stderr
        # the calls, not the one-token probe of `n` a new endpoint gets
        assert sum(r["body"].get("n", 1) for r in server.chat_requests
                   if r["body"].get("max_tokens") != 1) == 2
    assert Store(db).get_trace(_fields(result)["run"]).config["method"] == REF


def test_an_installed_plugin_runs_from_the_run_page(installed, db):
    from test_app import app, start_run

    at = app(FakeProvider())
    assert "Best of n by length" in at.radio(key="method").options
    at.radio(key="method").set_value(REF).run()
    at.number_input(key="method_setting_n").set_value(3).run()
    start_run(at, QUESTION, "52")
    assert not at.exception, at.exception
    [stored] = Store(db).list_runs()
    trace = Store(db).get_trace(stored.id)
    assert trace.status == "completed" and trace.budget.calls == 3
    assert trace.config["method_settings"] == {"n": 3, "prefer": "shortest"}


def test_history_and_list_filter_by_a_plugins_method(installed, db):
    from test_app import history

    from pdr_core.run.methods import run

    store = Store(db)
    mine = asyncio.run(run(QUESTION, RunConfig(method=REF, method_settings={"n": 2}),
                           FakeProvider(), store.writer()))
    other = asyncio.run(run(QUESTION, RunConfig(method="vote", width=2), FakeProvider(),
                            store.writer()))
    listed = cli("list", "--method", "best-of-length", db=db, env_extra=_env(installed))
    assert listed.returncode == 0, listed.stderr
    assert mine.id in listed.stdout and other.id not in listed.stdout
    at = history()
    assert "best-of-length" in at.selectbox(key="history_method").options  # shown by name
    at.selectbox(key="history_method").set_value(REF).run()
    assert not at.exception, at.exception
    [shown] = at.selectbox(key="history_open").options
    assert shown.endswith(mine.id)


def test_a_plugins_declared_schedule_gives_its_preview_and_evaluate_estimates(installed):
    from pdr_core.evals.estimate import estimate
    from pdr_core.evals.problems import Problem
    from pdr_core.evals.spec import EvalSpec
    from pdr_core.run.preview import preview

    config = get_method(REF).prepare(RunConfig(method=REF, width=4,
                                               method_settings={"n": 7}))
    assert preview(config, QUESTION).calls == 7  # n, not the width
    trace = asyncio.run(run_plugin(config))
    assert trace.budget.calls == 7
    spec = EvalSpec(dataset="x", methods=(REF,), widths=(2,))
    problems = [Problem("a", QUESTION, "52"), Problem("b", QUESTION, "52")]
    [arm] = estimate(spec, problems)
    assert arm.calls == 2 * 4  # the declared default n = 4 per run, whatever the width


async def run_plugin(config):
    from pdr_core.run.methods import run

    return await run(QUESTION, config, FakeProvider())
