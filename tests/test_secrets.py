"""A planted API key, given through OPENAI_API_KEY or the provider's constructor, appears in
no artefact: not the store (nor its WAL and shared-memory files), not exported traces, not
stdout or stderr, not debug logging of the SDK and its transport, not exception messages,
chains or reprs. Successful and failing runs (401, 500, connection refused) alike."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sqlite3
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
from openai_server import OpenAIServer

from pdr_core.config import RunConfig
from pdr_core.providers import (
    EndpointRequest,
    EndpointSettings,
    ProviderError,
    choose_endpoint,
    resolve_provider,
)
from pdr_core.providers.openai import OpenAIProvider
from pdr_core.run.methods import run
from pdr_core.store import Store

ROOT = Path(__file__).resolve().parent.parent
ENV_KEY = "sk-PLANTED-env-0123456789abcdefXYZ"
ARG_KEY = "sk-PLANTED-arg-9876543210fedcbaQRS"
SECRETS = (ENV_KEY, ARG_KEY, "PLANTED", ENV_KEY[-12:], ARG_KEY[-12:])
CONFIG = RunConfig(method="pdr", width=2, depth=2, max_tokens=256)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_clean(artefacts: dict[str, str | bytes]) -> None:
    assert artefacts
    for name, content in artefacts.items():
        text = content.decode("latin-1") if isinstance(content, bytes) else content
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} found in {name}"


def store_files(db: Path) -> dict[str, bytes]:
    files = {p.name: p.read_bytes() for p in db.parent.glob(db.name + "*")}
    assert {db.name, db.name + "-wal", db.name + "-shm"} <= set(files), files.keys()
    return files


def exception_texts(exc: BaseException) -> str:
    """The message, repr and the whole chained traceback, as a crash report would show."""
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(exc)])


@pytest.fixture
def debug_logs(caplog):
    for name in (None, "openai", "httpx", "httpx2", "httpcore", "httpcore2", "asyncio"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def test_library_runs_leak_no_key(tmp_path, monkeypatch, debug_logs):
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    db = tmp_path / "runs.sqlite"
    store = Store(db)
    # Held open so that SQLite keeps the WAL and shared-memory files for inspection.
    keep = sqlite3.connect(db)
    keep.execute("SELECT count(*) FROM runs").fetchone()
    artefacts: dict[str, str | bytes] = {}
    errors: list[BaseException] = []

    def go(name: str, provider: OpenAIProvider) -> None:
        artefacts[f"repr({name} provider)"] = repr(provider) + str(provider)
        trace = asyncio.run(run("What is 3 + 4?", CONFIG, provider, store.writer()))
        artefacts[f"{name} trace"] = trace.to_json()
        artefacts[f"{name} stored"] = store.get_trace(trace.id).to_json()
        artefacts[f"{name} node errors"] = "\n".join(n.error or "" for n in trace.nodes)
        artefacts[f"{name} run error"] = trace.error or ""
        return trace

    with OpenAIServer(api_key=ENV_KEY) as env_ok, OpenAIServer(api_key=ARG_KEY) as arg_ok, \
            OpenAIServer(api_key="sk-the-right-one-999") as strict, OpenAIServer() as flaky:
        environ = {"OPENAI_BASE_URL": env_ok.base_url, "OPENAI_API_KEY": ENV_KEY}
        from_env = resolve_provider(choose_endpoint(EndpointRequest(model="fake-model"), environ))
        from_arg = OpenAIProvider(arg_ok.base_url, ARG_KEY, "fake-model", max_retries=0)
        assert go("env key", from_env).status == "completed"
        assert go("constructor key", from_arg).status == "completed"
        assert env_ok.chat_requests and arg_ok.chat_requests  # the keys were really sent

        for key in (None, ARG_KEY):
            rejected = OpenAIProvider(strict.base_url, key, "fake-model", max_retries=0)
            trace = go(f"401 {key and 'arg'}", rejected)
            assert trace.status == "failed" and trace.nodes[0].error_kind == "auth"
            check = asyncio.run(rejected.check_connection())
            assert not check.ok
            artefacts[f"401 {key and 'arg'} check"] = check.message
            with pytest.raises(ProviderError) as caught:
                asyncio.run(rejected.complete([{"role": "user", "content": "hi"}],
                                              _sampling()))
            errors.append(caught.value)

        flaky.inject("500", 2 + 2 * 2)  # the drafts' shared request, then each on its own
        server_error = OpenAIProvider(flaky.base_url, ARG_KEY, "fake-model", max_retries=1)
        assert go("500", server_error).nodes[0].error_kind == "server"
        flaky.inject("500")
        with pytest.raises(ProviderError) as caught:
            asyncio.run(OpenAIProvider(flaky.base_url, ARG_KEY, "fake-model", max_retries=0)
                        .complete([{"role": "user", "content": "hi"}], _sampling()))
        errors.append(caught.value)

    refused = OpenAIProvider(f"http://127.0.0.1:{closed_port()}/v1", ARG_KEY, "fake-model",
                             max_retries=0)
    assert go("refused", refused).nodes[0].error_kind == "connection"
    with pytest.raises(ProviderError) as caught:
        asyncio.run(refused.complete([{"role": "user", "content": "hi"}], _sampling()))
    errors.append(caught.value)

    settings = EndpointSettings(base_url="http://127.0.0.1:9/v1", api_key=ARG_KEY, model="m")
    artefacts["repr(settings)"] = repr(settings) + str(settings)
    artefacts["repr(resolved provider)"] = repr(resolve_provider(settings))
    for index, error in enumerate(errors):
        artefacts[f"exception {index}"] = exception_texts(error)
    artefacts.update(store_files(db))
    keep.close()
    artefacts["logs"] = "\n".join(
        f"{r.name} {r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in debug_logs.records)
    assert any(r.name.startswith("openai") for r in debug_logs.records), "no SDK logs seen"
    assert len(errors) == 4
    assert_clean(artefacts)


def _sampling():
    from pdr_core.providers.base import Sampling

    return Sampling(max_tokens=32, seed=1)


def cli(*args: str, db: Path, key: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PDR_"))}
    # The SDK's own debug logging on: whatever it logs lands on stderr, and is searched.
    env.update({"PYTHONPATH": str(ROOT), "OPENAI_API_KEY": key, "OPENAI_LOG": "debug"})
    return subprocess.run([sys.executable, "-m", "pdr_core", *args, "--db", str(db)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


# OPENAI_API_KEY goes only to OPENAI_BASE_URL unless the flag sends it to --base-url.
KEY_FLAG = ("--api-key-env", "OPENAI_API_KEY")


def test_command_line_runs_leak_no_key(tmp_path):
    db = tmp_path / "runs.sqlite"
    out = tmp_path / "trace.json"
    results: dict[str, subprocess.CompletedProcess] = {}
    with OpenAIServer(api_key=ENV_KEY) as good, OpenAIServer(api_key="sk-other-999") as strict:
        results["ok"] = cli("run", "What is 3 + 4?", "--width", "2", "--base-url",
                            good.base_url, "--model", "fake-model", "--out", str(out),
                            *KEY_FLAG, db=db, key=ENV_KEY)
        results["401"] = cli("run", "What is 3 + 4?", "--method", "single", "--base-url",
                             strict.base_url, "--model", "fake-model", *KEY_FLAG, db=db,
                             key=ENV_KEY)
        good.inject("500", 3)  # the first call and both of the SDK's retries
        results["500"] = cli("run", "What is 3 + 4?", "--method", "single", "--base-url",
                             good.base_url, "--model", "fake-model", *KEY_FLAG, db=db,
                             key=ENV_KEY)
    results["refused"] = cli("run", "What is 3 + 4?", "--method", "single", "--base-url",
                             f"http://127.0.0.1:{closed_port()}/v1", "--model", "fake-model",
                             *KEY_FLAG, db=db, key=ENV_KEY)
    assert results["ok"].returncode == 0, results["ok"].stderr
    assert "openai" in results["ok"].stderr  # the SDK's debug log really was on
    for name, words in (("401", "Authentication failed"), ("500", "HTTP 500"),
                        ("refused", "Cannot connect")):
        assert results[name].returncode == 1 and words in results[name].stderr, name
    run_ids = [r.id for r in Store(db).list_runs()]
    assert len(run_ids) == 4
    for run_id in run_ids:
        results[f"export {run_id}"] = cli("export", run_id, db=db, key=ENV_KEY)
        results[f"show {run_id}"] = cli("show", run_id, db=db, key=ENV_KEY)
    results["list"] = cli("list", db=db, key=ENV_KEY)
    artefacts: dict[str, str | bytes] = {"--out trace": out.read_text()}
    for name, result in results.items():
        artefacts[f"{name} stdout"] = result.stdout
        artefacts[f"{name} stderr"] = result.stderr
    artefacts.update({p.name: p.read_bytes() for p in tmp_path.glob("runs.sqlite*")})
    assert_clean(artefacts)
