"""Mixture of agents: proposers routed to their own endpoints and models, over HTTP to two
test servers; call counts per layer; layer 2 reads layer 1; cancel, resume and fork."""

import asyncio
import json

import pytest
from conftest import QUESTION, interrupt_after, plain, run_fake
from openai_server import OpenAIServer
from test_app import history
from test_cli import cli

from pdr_core.config import ConfigError, RunConfig
from pdr_core.events import RunStarted
from pdr_core.providers.openai import OpenAIProvider
from pdr_core.providers.routes import Route, Routes, parse_routes
from pdr_core.render.tree import tree_figure
from pdr_core.run.engine import RunContext
from pdr_core.run.methods import fork, resume, run
from pdr_core.run.moa import moa
from pdr_core.store import Store
from pdr_core.testing import FakeProvider, KnownCapabilities
from pdr_core.trace_import import trace_from_json
from ui.state import run_key


@pytest.fixture(autouse=True)
def _no_configured_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def _chat(server):
    """Chat requests, without the one-token probe of `n` a new endpoint may get."""
    return [r for r in server.chat_requests if r["body"].get("max_tokens") != 1]


def _user(messages):
    return next(m["content"] for m in messages if m["role"] == "user")


def _moa(proposers, layers=2, **more):
    return RunConfig(method="moa", method_settings={"proposers": proposers, "layers": layers},
                     **more)


def test_branches_reach_the_endpoints_they_were_assigned_and_layer_2_reads_layer_1():
    with OpenAIServer(("fake-model", "alpha")) as one, OpenAIServer(("beta",)) as two:
        provider = OpenAIProvider(one.base_url, "sk-one", "fake-model", max_retries=0,
                                  memory=KnownCapabilities(one.base_url, "fake-model", n=True))
        config = _moa(f"alpha,beta@{two.base_url},alpha@{one.base_url}", layers=2)
        trace = asyncio.run(run(QUESTION, config, provider, reference="52"))
        first, second = _chat(one), _chat(two)
    assert trace.status == "completed", trace.error
    assert config.calls == len(first) + len(second) == 3 * 2 + 1
    # proposers 0 and 2 (alpha, on the run's endpoint) in both layers, and the aggregator
    assert sorted(r["body"]["model"] for r in first) == ["alpha"] * 4 + ["fake-model"]
    assert [r["body"]["model"] for r in second] == ["beta", "beta"]
    # the key given for the run's endpoint goes there only
    assert {r["authorization"] for r in first} == {"Bearer sk-one"}
    assert all("sk-one" not in (r["authorization"] or "") for r in second)
    nodes = {n.id: n for n in trace.nodes}
    assert [(nodes[f"r{layer}-{stage}-{j}"].model, nodes[f"r{layer}-{stage}-{j}"].endpoint)
            for layer, stage in ((1, "draft"), (2, "propose")) for j in range(3)] == [
        ("alpha", one.base_url), ("beta", two.base_url), ("alpha", one.base_url)] * 2
    layer1 = [nodes[f"r1-draft-{j}"] for j in range(3)]
    assert len({n.text for n in layer1}) == 3
    for node in [nodes[f"r2-propose-{j}"] for j in range(3)] + [nodes["r3-final-0"]]:
        prompt = _user(node.messages)
        source = layer1 if node.round == 2 else [nodes[f"r2-propose-{j}"] for j in range(3)]
        assert all(n.text in prompt for n in source)
        assert node.parent_ids == [n.id for n in source]
    assert trace.final_answer == nodes["r3-final-0"].answer == "52"
    # the routes are recorded, never a key; the trace round-trips with them
    assert trace.config["method_settings"]["proposers"].count("@") == 2
    assert "sk-one" not in trace.to_json()
    assert trace_from_json(trace.to_json()).node("r1-draft-1").endpoint == two.base_url


def test_the_configured_key_goes_only_to_its_own_endpoint():
    with OpenAIServer(("fake-model",)) as one, OpenAIServer(("beta",)) as two:
        provider = OpenAIProvider(one.base_url, "sk-one", "fake-model", max_retries=0)
        environ = {"OPENAI_BASE_URL": two.base_url, "OPENAI_API_KEY": "sk-two"}
        routes = Routes(provider, environ)
        assert routes.provider(Route("fake-model", one.base_url)) is provider
        ctx = RunContext("run-1", QUESTION, _moa(f"beta@{two.base_url},fake-model", 1),
                         provider, lambda event: None, routes=routes)

        async def go():
            ctx.emit(RunStarted("run-1", QUESTION, None, ctx.config.to_dict()))
            return await moa(ctx)

        asyncio.run(go())
        first, second = _chat(one), _chat(two)
    assert {r["authorization"] for r in second} == {"Bearer sk-two"}
    assert {r["authorization"] for r in first} == {"Bearer sk-one"}
    assert len(first) == 2 and len(second) == 1


def test_a_remote_proposer_no_key_belongs_to_is_refused_before_any_call():
    provider = FakeProvider()
    trace = run_fake(_moa("fake-model,big@https://api.example.com/v1"), provider)
    assert trace.status == "failed" and "cannot call a proposer" in trace.error
    assert "api.example.com" in trace.error and provider.calls == []


def test_schedule_calls_and_settings():
    assert _moa("a,b,c", 3).schedule == (3, 3, 3, 1)
    assert RunConfig(method="moa", width=4).schedule == (4, 4, 1)  # layers default 2
    assert parse_routes("m , n@http://127.0.0.1:9/v1") == (
        Route("m"), Route("n", "http://127.0.0.1:9/v1"))
    for bad in ("a@ftp://x", "a,,b", "has space"):
        with pytest.raises(ConfigError, match="proposers"):
            _moa(bad)
    with pytest.raises(ConfigError, match="layers"):
        _moa("a", 0)
    # no proposers: width calls of the run's own model, none routed
    provider = FakeProvider()
    trace = run_fake(RunConfig(method="moa", width=2), provider)
    assert trace.status == "completed" and len(provider.calls) == 2 + 2 + 1
    assert all(n.model is None for n in trace.nodes)


def test_cancel_then_resume_repeats_no_finished_call_and_keeps_each_nodes_model(store):
    config = _moa("a,b,c", layers=3)
    before = interrupt_after(store, QUESTION, config, FakeProvider(delay=0.05), 4, "52")
    assert before.status == "interrupted"
    done = {n.id for n in before.nodes if n.status == "ok"}
    second = FakeProvider()
    trace = asyncio.run(resume(before, store.events(before.id), second,
                               store.resume_writer(before.id)))
    assert trace.status == "completed" and trace.final_answer == "52"
    assert 0 < len(second.calls) == config.calls - len(done)
    fresh = run_fake(config)
    assert [(n.id, n.model, n.text) for n in trace.nodes] == [
        (n.id, n.model, n.text) for n in fresh.nodes]
    assert {n.model for n in trace.nodes if n.stage != "final"} == {"a", "b", "c"}


def test_fork_at_a_layer_2_proposer_calls_it_and_the_aggregator_only():
    parent = run_fake(_moa("a,b", layers=2))
    provider = FakeProvider()
    child = asyncio.run(fork(parent, "r2-propose-1", provider))
    assert child.status == "completed"
    assert len(provider.calls) == 2
    assert child.node("r2-propose-1").model == "b" and not child.node("r2-propose-1").reused
    assert child.node("r1-draft-0").reused and child.node("r1-draft-0").model == "a"


def test_moa_runs_from_the_cli_on_two_endpoints(tmp_path):
    with OpenAIServer(("fake-model", "alpha")) as one, OpenAIServer(("beta",)) as two:
        result = cli("run", QUESTION, "--method", "moa", "--proposers",
                     f"alpha,beta@{two.base_url}", "--layers", "2", "--base-url",
                     one.base_url, "--model", "fake-model", db=tmp_path / "runs.sqlite")
        assert result.returncode == 0, result.stderr
        assert len(_chat(one)) == 2 + 1 and len(_chat(two)) == 2
        bad = cli("run", QUESTION, "--method", "moa", "--proposers", "a@ftp://x",
                  "--base-url", one.base_url, "--model", "fake-model",
                  db=tmp_path / "runs.sqlite")
        assert bad.returncode == 2 and "proposers" in bad.stderr


def test_the_tree_colours_by_model_when_asked():
    trace = run_fake(_moa("a,b,a", layers=2, model="boss"))
    by_model = {t.name: set(t.customdata) for t in tree_figure(trace, colour_by="model").data
                if t.customdata is not None}
    assert by_model == {"a (×4)": {"r1-draft-0", "r1-draft-2", "r2-propose-0", "r2-propose-2"},
                        "b (×2)": {"r1-draft-1", "r2-propose-1"}, "boss (×1)": {"r3-final-0"}}
    by_answer = [t.name for t in tree_figure(trace).data if t.customdata is not None]
    assert by_answer == ["52 (×7) ✓"]


def test_the_run_view_offers_colour_by_model_for_a_run_of_several_models(db):
    store = Store(db)
    moa_run = run_fake(_moa("a,b", layers=1), sink=store.writer())
    single = run_fake(RunConfig(method="vote", width=2), sink=store.writer())
    at = history()
    at.selectbox(key="history_open").set_value(moa_run.id).run()
    radio = at.radio(key=run_key(moa_run.id, "history", "colour_by"))
    assert list(radio.options) == ["answer", "model"]
    radio.set_value("model").run()
    assert not at.exception
    legends = [json.loads(c.proto.spec)["layout"]["legend"]["title"]["text"]
               for c in at.get("plotly_chart")]
    assert "models" in legends
    at.selectbox(key="history_open").set_value(single.id).run()
    assert not [r for r in at.radio if r.key == run_key(single.id, "history", "colour_by")]


def test_the_playground_of_a_routed_node_calls_its_recorded_model_and_endpoint(
        db, monkeypatch):
    from test_key_routes import history

    from pdr_core.providers import EndpointSettings

    with OpenAIServer(("fake-model",)) as one, OpenAIServer(("beta",)) as two:
        provider = OpenAIProvider(one.base_url, "sk-one", "fake-model", max_retries=0,
                                  memory=KnownCapabilities(one.base_url, "fake-model", n=True))
        config = _moa(f"fake-model,beta@{two.base_url}", layers=1, model="fake-model",
                      base_url=one.base_url)
        parent = asyncio.run(run(QUESTION, config, provider, Store(db).writer()))
        assert parent.status == "completed", parent.error
        one.clear(), two.clear()
        at = history(monkeypatch, db, EndpointSettings(base_url=one.base_url,
                                                       model="fake-model", api_key="sk-one"),
                     run_id=parent.id)
        for node, server, model in (("r1-draft-1", two, "beta"),
                                    ("r1-draft-0", one, "fake-model")):
            at.selectbox(key=f"history_node_{parent.id}").set_value(node).run()
            at.button(key=f"history_{node}_{parent.id}_pg_send").click().run()
            assert not at.exception, at.exception
            [request] = _chat(server)
            assert request["body"]["model"] == model
        # the key given for the run's endpoint went there only, never to the proposer's
        assert [r["authorization"] for r in _chat(one)] == ["Bearer sk-one"]
        assert all("sk-one" not in (r["authorization"] or "") for r in two.requests)
        at.selectbox(key=f"history_node_{parent.id}").set_value("r1-draft-1").run()
        at.button(key=f"history_r1-draft-1_{parent.id}_pg_send").click().run()
        at.button(key=f"history_r1-draft-1_{parent.id}_pg_keep").click().run()
        assert not at.exception, at.exception
    [kept] = [r for r in Store(db).list_runs() if r.id != parent.id]
    node = Store(db).get_trace(kept.id).node("r1-draft-1")
    assert (node.model, node.endpoint) == ("beta", two.base_url)


def test_proposers_chosen_in_settings_are_the_run_pages_default_and_are_saved(db):
    from test_app import app

    from pdr_core.user_settings import load_settings

    at = app(FakeProvider())
    at.switch_page("pages/settings.py").run()
    at.text_input(key="moa_proposers").input("nope@ftp://x").run()
    assert any("Proposers" in plain(e.value) and "MODEL@URL" in plain(e.value)
               for e in at.error), [e.value for e in at.error]
    chosen = "alpha, beta@http://127.0.0.1:9/v1"
    at.text_input(key="moa_proposers").input(chosen).run()
    assert not at.error
    at.button(key="save_settings").click().run()
    assert load_settings().proposers == chosen
    at.switch_page("pages/run.py").run()
    at.radio(key="method").set_value("moa").run()
    assert at.text_input(key="method_setting_proposers").value == chosen
    # changed in Settings again: the Run page follows
    at.switch_page("pages/settings.py").run()
    at.text_input(key="moa_proposers").input("gamma").run()
    at.switch_page("pages/run.py").run()
    assert at.text_input(key="method_setting_proposers").value == "gamma"
    # a new session starts from the saved list
    fresh = app(FakeProvider())
    fresh.radio(key="method").set_value("moa").run()
    assert fresh.text_input(key="method_setting_proposers").value == chosen


def test_the_run_page_sends_the_apps_key_to_the_runs_endpoint_only(db, monkeypatch):
    from test_app import start_run

    from pdr_core.providers import EndpointSettings

    with OpenAIServer(("fake-model",)) as one, OpenAIServer(("beta",)) as two:
        # The app's rule: a key from its secrets stands in for OPENAI_API_KEY, which goes
        # only to OPENAI_BASE_URL (here the proposer's endpoint); the key typed in Settings
        # goes only to the run's endpoint.
        monkeypatch.setenv("OPENAI_BASE_URL", two.base_url)
        at = app_with_secrets({"OPENAI_API_KEY": "sk-secret"})
        at.session_state["endpoint_settings"] = EndpointSettings(
            base_url=one.base_url, model="fake-model", api_key="sk-app")
        at.run()
        at.radio(key="method").set_value("moa").run()
        at.text_input(key="method_setting_proposers").input(
            f"fake-model,beta@{two.base_url}").run()
        at.number_input(key="method_setting_layers").set_value(1).run()
        start_run(at, QUESTION, "52")
        assert not at.exception, at.exception
        first, second = _chat(one), _chat(two)
    [stored] = Store(db).list_runs()
    assert Store(db).get_trace(stored.id).status == "completed"
    assert len(first) == 2 and len(second) == 1  # proposer 0 and the aggregator; proposer 1
    assert {r["authorization"] for r in first} == {"Bearer sk-app"}
    assert {r["authorization"] for r in second} == {"Bearer sk-secret"}


def app_with_secrets(secrets):
    """The app with Streamlit secrets set, before its first run."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"),
                           default_timeout=30)
    for name, value in secrets.items():
        at.secrets[name] = value
    return at
