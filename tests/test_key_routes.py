"""A key goes only where the user sent it: a listener on 127.0.0.1 (the project's test
server, which logs each request's Authorization header) never receives the planted
environment key through the Settings page's connection test, an imported trace resumed or
forked on the command line, or the app's fork and playground; a run continues on its own
recorded endpoint; a connection test fails a wrong key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import plain, run_fake, started_job
from openai_server import OpenAIServer
from streamlit.testing.v1 import AppTest

from pdr_core.config import RunConfig
from pdr_core.providers import EndpointSettings
from pdr_core.store import Store
from pdr_core.testing import FakeProvider

ROOT = Path(__file__).resolve().parent.parent
PLANTED = "sk-PLANTED-env-key-0123456789"
REMOTE = "https://collector.example.com/v1"


def keys_seen(server: OpenAIServer) -> list[str | None]:
    return [r["authorization"] for r in server.requests]


def assert_never_planted(server: OpenAIServer) -> None:
    assert all(PLANTED not in (auth or "") for auth in keys_seen(server)), keys_seen(server)


def trace_file(tmp_path: Path, base_url: str, *, failed: bool) -> Path:
    """A trace made elsewhere, recorded on `base_url`: a failed single call (to resume) or
    a completed vote of two (to fork)."""
    config = RunConfig(method="single" if failed else "vote", width=2, model="fake-model",
                       base_url=base_url)
    provider = FakeProvider(fail=(lambda m, s: "down") if failed else None)
    trace = run_fake(config, provider, reference=None)
    path = tmp_path / f"{trace.id}.json"
    path.write_text(trace.to_json(), encoding="utf-8")
    return path


def cli(*args: str, db: Path, env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PDR_"))}
    env.update({"PYTHONPATH": str(ROOT), **env_extra})
    return subprocess.run([sys.executable, "-m", "pdr_core", *args, "--db", str(db)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


def imported(path: Path, db: Path) -> str:
    result = cli("import", str(path), db=db, env_extra={})
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


# ----- command line ----------------------------------------------------------------------


def test_an_imported_run_resumes_and_forks_on_its_own_endpoint_without_the_key(tmp_path):
    db = tmp_path / "runs.sqlite"
    # Only PDR_MODEL and the key set: the run must not go to api.openai.com with the key.
    env = {"OPENAI_API_KEY": PLANTED, "PDR_MODEL": "other-model"}
    with OpenAIServer() as listener:
        failed = imported(trace_file(tmp_path, listener.base_url, failed=True), db)
        resumed = cli("resume", failed, db=db, env_extra=env)
        assert resumed.returncode == 0, resumed.stderr
        assert listener.base_url in resumed.stderr  # it says where it calls
        done = imported(trace_file(tmp_path, listener.base_url, failed=False), db)
        forked = cli("fork", done, "--node", "r1-draft-1", db=db, env_extra=env)
        assert forked.returncode == 0, forked.stderr
        bodies = [r["body"] for r in listener.chat_requests]
    assert len(bodies) == 2 and {b["model"] for b in bodies} == {"fake-model"}
    assert_never_planted(listener)
    assert keys_seen(listener) == ["Bearer not-needed"] * 2


def test_the_key_goes_to_a_recorded_endpoint_only_with_the_flag(tmp_path):
    db = tmp_path / "runs.sqlite"
    env = {"OPENAI_API_KEY": PLANTED}
    remote = imported(trace_file(tmp_path, REMOTE, failed=True), db)
    refused = cli("resume", remote, db=db, env_extra=env)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "collector.example.com" in refused.stderr
    assert "--trust-recorded-endpoint" in refused.stderr
    with OpenAIServer(api_key=PLANTED) as strict:
        run_id = imported(trace_file(tmp_path, strict.base_url, failed=True), db)
        without = cli("resume", run_id, db=db, env_extra=env)
        assert without.returncode == 1 and "401" in without.stderr
        assert_never_planted(strict)
        trusted = cli("resume", run_id, "--trust-recorded-endpoint", db=db, env_extra=env)
        assert trusted.returncode == 0, trusted.stderr
        assert keys_seen(strict)[-1] == f"Bearer {PLANTED}"


def test_a_base_url_flag_does_not_take_the_environment_key(tmp_path):
    db = tmp_path / "runs.sqlite"
    with OpenAIServer() as listener:
        result = cli("run", "What is 2 + 2?", "--method", "single", "--base-url",
                     listener.base_url, "--model", "fake-model", db=db,
                     env_extra={"OPENAI_API_KEY": PLANTED})
        assert result.returncode == 0, result.stderr
        assert listener.chat_requests
    assert_never_planted(listener)
    remote = cli("run", "What is 2 + 2?", "--base-url", REMOTE, "--model", "m", db=db,
                 env_extra={"OPENAI_API_KEY": PLANTED})
    assert remote.returncode == 1 and "--api-key-env" in remote.stderr


# ----- the app ---------------------------------------------------------------------------


def settings_page(monkeypatch, **environ: str) -> AppTest:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    at = AppTest.from_file(str(ROOT / "pages" / "settings.py"), default_timeout=30).run()
    at.radio(key="endpoint_mode").set_value("OpenAI-compatible endpoint").run()
    return at


def test_settings_connection_test_never_sends_the_environment_key(db, monkeypatch):
    with OpenAIServer() as listener:
        at = settings_page(monkeypatch, OPENAI_API_KEY=PLANTED)
        assert any("goes only to https://api.openai.com/v1" in c.value for c in at.caption)
        at.text_input(key="base_url").input(listener.base_url).run()
        at.text_input(key="model_name").input("fake-model").run()
        at.button(key="test_connection").click().run()
        assert not at.exception
        assert listener.chat_requests  # the connection test made its one-token call
    assert_never_planted(listener)
    assert any("key works" in plain(s.value) for s in at.success)


def test_a_wrong_key_fails_the_connection_test_and_the_result_stays(db, monkeypatch):
    with OpenAIServer(api_key="sk-right-one-42", open_models=True) as server:
        at = settings_page(monkeypatch)
        at.text_input(key="base_url").input(server.base_url).run()
        at.text_input(key="model_name").input("fake-model").run()
        at.text_input(key="api_key").input("sk-wrong-one-13").run()
        at.button(key="test_connection").click().run()
        assert any("test call failed" in plain(e.value) and "401" in plain(e.value)
                   for e in at.error)
        assert not at.success
        at.text_input(key="api_key").input("sk-right-one-42").run()
        at.button(key="test_connection").click().run()
        at.run()  # any later rerun keeps the result on the page
        assert not at.error
        [ok] = [plain(s.value) for s in at.success]
        assert "key works" in ok and "input +" in ok and "output tokens" in ok


def history(monkeypatch, db: Path, session: EndpointSettings | None = None,
            run_id: str | None = None) -> AppTest:
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED)
    at = AppTest.from_file(str(ROOT / "pages" / "history.py"), default_timeout=30)
    if run_id is not None:  # else the newest run opens
        at.query_params["run"] = run_id
    if session is not None:
        at.session_state["endpoint_settings"] = session
    return at.run()


def test_fork_and_playground_call_the_runs_recorded_endpoint(db, tmp_path, monkeypatch):
    store = Store(db)
    with OpenAIServer() as recorded, OpenAIServer() as session:
        from pdr_core.trace_import import trace_from_json

        path = trace_file(tmp_path, recorded.base_url, failed=False)
        run_id = store.import_trace(trace_from_json(path.read_bytes()))
        at = history(monkeypatch, db, EndpointSettings(base_url=session.base_url,
                                                       model="fake-model"))
        at.selectbox(key=f"history_node_{run_id}").set_value("r1-draft-1").run()
        assert any(recorded.base_url in plain(c.value) and "fake-model" in plain(c.value)
                   for c in at.caption), [c.value for c in at.caption]
        at.button(key=f"history_r1-draft-1_{run_id}_pg_send").click().run()
        assert not at.exception and len(recorded.chat_requests) == 1
        at.button(key=f"history_r1-draft-1_{run_id}_fork").click().run()
        job = started_job(at)
        assert job.wait(timeout=30).status == "completed"
        assert len(recorded.chat_requests) == 2 and session.requests == []
        # the explicit override: this session's endpoint (on the same run, not its fork)
        at = history(monkeypatch, db, EndpointSettings(base_url=session.base_url,
                                                       model="fake-model"), run_id=run_id)
        at.selectbox(key=f"history_node_{run_id}").set_value("r1-draft-1").run()
        at.radio(key=f"history_call_{run_id}_endpoint").set_value(
            "This session's endpoint").run()
        at.button(key=f"history_r1-draft-1_{run_id}_pg_send").click().run()
        assert len(session.chat_requests) == 1
    assert_never_planted(recorded)
    assert_never_planted(session)


def test_a_remote_recorded_host_needs_a_confirmation_naming_it(db, tmp_path, monkeypatch):
    from pdr_core.trace_import import trace_from_json

    path = trace_file(tmp_path, REMOTE, failed=False)
    run_id = Store(db).import_trace(trace_from_json(path.read_bytes()))
    at = history(monkeypatch, db)
    at.selectbox(key=f"history_node_{run_id}").set_value("r1-draft-1").run()
    assert any("collector.example.com" in plain(w.value) for w in at.warning)
    assert at.button(key=f"history_r1-draft-1_{run_id}_pg_send").disabled
    assert at.button(key=f"history_r1-draft-1_{run_id}_fork").disabled
    trust = at.checkbox(key=f"history_call_{run_id}_trust")
    assert "collector.example.com" in trust.label
    trust.check().run()
    assert not at.button(key=f"history_r1-draft-1_{run_id}_pg_send").disabled
    assert any("trusted for collector.example.com" in plain(c.value) for c in at.caption)


def test_a_locked_deployment_offers_no_confirmation(db, tmp_path, monkeypatch):
    from pdr_core.trace_import import trace_from_json

    monkeypatch.setenv("PDR_LOCK_ENDPOINT", "1")
    path = trace_file(tmp_path, REMOTE, failed=False)
    run_id = Store(db).import_trace(trace_from_json(path.read_bytes()))
    at = history(monkeypatch, db, EndpointSettings(base_url=REMOTE, api_key="sk-typed",
                                                   model="m"))
    at.selectbox(key=f"history_node_{run_id}").set_value("r1-draft-1").run()
    assert [c.key for c in at.checkbox] == ["history_evals"]  # no confirmation offered
    assert any("does not send its key" in plain(e.value) for e in at.error)
    settings = AppTest.from_file(str(ROOT / "pages" / "settings.py"), default_timeout=30)
    settings.run()
    assert settings.radio(key="endpoint_mode").disabled
    assert any("fixed the endpoint" in i.value for i in settings.info)


def test_the_app_binds_to_loopback_by_default():
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
