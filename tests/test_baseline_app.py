"""The matched-budget baseline in the app: one click from the run view and from Compare, a
single pass whose max_tokens is the run's B_seq (capped by the model's context, with a
note), over HTTP to the test server; Compare shows the pair."""

from __future__ import annotations

import asyncio
from pathlib import Path

from conftest import plain, started_job
from openai_server import OpenAIServer
from streamlit.testing.v1 import AppTest

from pdr_core.config import RunConfig
from pdr_core.providers.openai import OpenAIProvider
from pdr_core.run.baseline import baseline_config, baseline_name
from pdr_core.run.methods import run
from pdr_core.store import Store
from ui.state import run_key

ROOT = Path(__file__).resolve().parent.parent


def _provider(server: OpenAIServer) -> OpenAIProvider:
    return OpenAIProvider(server.base_url, "sk-x", "fake-model", max_retries=0)


def _store_run(db: Path, server: OpenAIServer, config: RunConfig):
    return asyncio.run(run("What is 6 * 7?", config, _provider(server), Store(db).writer(),
                           reference="42"))


def _budget(request) -> int:
    body = request["body"]
    return body.get("max_completion_tokens") or body.get("max_tokens")


def _notices(at: AppTest) -> list[str]:
    return [plain(e.value) for e in (*at.info, *at.warning, *at.error)]


def test_run_view_button_runs_a_single_pass_at_the_runs_b_seq_and_compare_shows_both(db):
    with OpenAIServer() as server:
        source = _store_run(db, server, RunConfig(method="pdr", width=3, depth=2))
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
        at.session_state["provider"] = _provider(server)
        at.run()
        at.switch_page("pages/history.py").run()
        assert not at.exception, at.exception
        before = len(server.chat_requests)
        at.button(key=run_key(source.id, "history", "baseline")).click().run()
        job = started_job(at)
        baseline = job.wait(timeout=30)
        [request] = server.chat_requests[before:]
    assert baseline.status == "completed" and baseline.config["method"] == "single"
    assert _budget(request) == source.budget.b_seq != source.config["max_tokens"]
    [summary] = [r for r in Store(db).list_runs() if r.id == baseline.id]
    assert summary.name == baseline_name(source.id) and "baseline" in summary.tags
    compare = AppTest.from_file(str(ROOT / "pages" / "compare.py"), default_timeout=30).run()
    assert not compare.exception, compare.exception
    assert compare.selectbox(key="compare_a").value == source.id
    assert compare.selectbox(key="compare_b").value == baseline.id
    assert any(f"Run B is the matched-budget baseline of run A: a single pass with max_tokens "
               f"{source.budget.b_seq:,}" in n and "matched B_seq" in n
               for n in _notices(compare))


def test_compare_starts_a_capped_baseline_with_a_note_and_shows_it_beside_its_run(db):
    with OpenAIServer() as server:
        source = _store_run(db, server, RunConfig(method="pdr", width=3, depth=2))
        _store_run(db, server, RunConfig(method="sr", depth=2))
        at = AppTest.from_file(str(ROOT / "pages" / "compare.py"), default_timeout=30)
        at.session_state["provider"] = _provider(server)
        at.run()
        assert at.selectbox(key="compare_a").value == source.id
        context = source.budget.b_seq // 2
        capped, note = baseline_config(source, context)
        assert note and capped.max_tokens < source.budget.b_seq
        at.number_input(key=run_key(source.id, "compare_a", "baseline_context")
                        ).set_value(context).run()
        assert any(n.startswith("The baseline's output budget is capped at") for n in
                   _notices(at))
        before = len(server.chat_requests)
        at.button(key=run_key(source.id, "compare_a", "baseline")).click().run()
        assert not at.exception, at.exception
        from ui.components import jobs

        job = jobs().get(at.selectbox(key="compare_b").value)  # shown beside its source
        job.wait(timeout=30)
        [request] = server.chat_requests[before:]
        at.run()
    assert _budget(request) == capped.max_tokens
    assert at.selectbox(key="compare_a").value == source.id
    assert at.selectbox(key="compare_b").value == job.run_id
    assert any("Run B is the matched-budget baseline of run A" in n
               and "capped below" in n for n in _notices(at))


def test_the_baseline_of_an_adaptive_verified_run_is_a_plain_single_pass(tmp_path):
    from pdr_core.testing import FakeProvider

    config = RunConfig(method="pdr", width=2, depth=2, distill="topk", k=1,
                       selection="verify", stop_when_agree=0.9)
    source = asyncio.run(run("What is 6 * 7?", config, FakeProvider(), reference="42"))
    baseline, note = baseline_config(source)
    assert note is None and baseline.method == "single"
    assert baseline.max_tokens == source.budget.b_seq and baseline.calls == 1
    assert (baseline.stop_when_agree, baseline.selection) == (None, "consensus")
