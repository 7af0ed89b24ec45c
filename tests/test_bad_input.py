"""Bad input through the command line and the library: each is refused with one clear
message that says what to fix, a non-zero exit code, no call to the endpoint, and a store
left exactly as it was."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from openai_server import OpenAIServer

from pdr_core.cli import main as cli_main
from pdr_core.config import ConfigError, RunConfig
from pdr_core.providers import EndpointSettings, ProviderError, resolve_provider
from pdr_core.providers.openai import OpenAIProvider
from pdr_core.run.methods import run
from pdr_core.store import Store, StoreError
from pdr_core.testing import FakeProvider, KnownCapabilities
from pdr_core.trace import TraceError
from pdr_core.trace_import import MAX_IMPORT_BYTES, trace_from_json

ROOT = Path(__file__).resolve().parent.parent
ONE_MB_QUESTION = "What is 1 + 1? " + "Consider this carefully. " * 43_000  # > 1 MB


@pytest.fixture(scope="module")
def server():
    with OpenAIServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def filled_db(tmp_path_factory) -> Path:
    """A store holding a completed and a failed run, every connection closed."""
    db = tmp_path_factory.mktemp("bad-input") / "runs.sqlite"
    store = Store(db)
    asyncio.run(run("What is 6 * 7?", RunConfig(method="vote", width=2), FakeProvider(),
                    store.writer(name="kept", tags=("a",)), reference="42"))
    asyncio.run(run("What is 1 + 2?", RunConfig(method="single"),
                    FakeProvider(fail=lambda m, s: "planted"), store.writer()))
    return db


def snapshot(db: Path) -> tuple:
    """Everything a person can see in the store, and the bytes of the file itself."""
    store = Store(db)
    runs = store.list_runs(limit=1000)
    traces = {r.id: store.get_trace(r.id).to_json() for r in runs}
    return runs, traces, db.read_bytes()


def cli(*args: str, db: Path, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PDR_"))}
    env.update({"PYTHONPATH": str(ROOT), **(env_extra or {})})
    return subprocess.run([sys.executable, "-m", "pdr_core", *args, "--db", str(db)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


def assert_refused(result: subprocess.CompletedProcess, code: int, *words: str) -> None:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert "error: " in message, result.stderr
    for word in words:
        assert word in message, message


# ----- configuration out of range, on the command line -------------------------------------

CONFIG_CASES = [
    (["--width", "0"], ["width=0 is invalid", "a whole number from 1 to 256"]),
    (["--width", "257"], ["width=257", "from 1 to 256"]),
    (["--width", "two"], ["argument --width", "invalid int value: 'two'"]),
    (["--depth", "0"], ["depth=0", "from 1 to 32"]),
    (["--depth", "33"], ["depth=33", "from 1 to 32"]),
    (["--k", "0"], ["k=0", "from 1 to 256"]),
    (["--distill", "topk", "--width", "2", "--k", "3"], ["k=3", "from 1 to 2", "topk"]),
    (["--workspace-tokens", "8"], ["workspace_tokens=8", "from 16 to"]),
    (["--max-tokens", "0"], ["max_tokens=0", "from 1 to"]),
    (["--max-tokens", "-5"], ["max_tokens=-5", "from 1 to"]),
    (["--total-budget", "0"], ["total_budget=0", "from 1 to"]),
    (["--total-budget", "-100"], ["total_budget=-100", "from 1 to"]),
    (["--temperature", "2.5"], ["temperature=2.5", "a number from 0 to 2"]),
    (["--temperature", "-0.1"], ["temperature=-0.1", "from 0 to 2"]),
    (["--temperature", "nan"], ["temperature=nan", "from 0 to 2"]),
    (["--concurrency", "0"], ["concurrency=0", "from 1 to 4096"]),
    (["--depth", "3", "--schedule", "4,2"],
     ["width_schedule='4,2'", "one width per round: depth is 3, the schedule has 2"]),
    (["--depth", "2", "--schedule", "4,x"], ["width_schedule='4,x'", "e.g. 8,4,1"]),
    (["--depth", "2", "--schedule", "0,1"], ["width_schedule=0", "from 1 to 256"]),
    (["--method", "vote", "--schedule", "4"], ["only method pdr takes a schedule, not vote"]),
    (["--method", "magic"], ["argument --method", "invalid choice: 'magic'", "pdr"]),
    (["--distill", "bogus"], ["argument --distill", "invalid choice: 'bogus'", "summary"]),
]


@pytest.mark.parametrize("flags, words", CONFIG_CASES,
                         ids=[" ".join(flags) for flags, _ in CONFIG_CASES])
def test_an_out_of_range_setting_is_refused_by_the_command_line(server, filled_db, flags,
                                                                  words):
    before = snapshot(filled_db)
    server.clear()
    result = cli("run", "What is 1 + 1?", "--base-url", server.base_url, "--model",
                 "fake-model", *flags, db=filled_db)
    assert_refused(result, 2, *words)
    assert server.chat_requests == []
    assert snapshot(filled_db) == before


@pytest.mark.parametrize("url, env", [
    ("localhost:8000", False), ("http://", False), ("ftp://example.com/v1", False),
    ("not a url", True),
])
def test_a_malformed_base_url_is_refused_before_any_call(filled_db, url, env):
    before = snapshot(filled_db)
    flags = [] if env else ["--base-url", url]
    result = cli("run", "What is 1 + 1?", "--model", "m", *flags, db=filled_db,
                 env_extra={"OPENAI_BASE_URL": url} if env else None)
    assert_refused(result, 1, "is not a valid URL", "needs a scheme and a host",
                   "http://127.0.0.1:8080/v1")
    assert snapshot(filled_db) == before


@pytest.mark.parametrize("question", ["", "   \n\t "])
def test_an_empty_question_is_refused(server, filled_db, question):
    before = snapshot(filled_db)
    server.clear()
    result = cli("run", question, "--base-url", server.base_url, "--model", "fake-model",
                 db=filled_db)
    assert_refused(result, 2, "question=", "a non-empty problem statement")
    assert server.chat_requests == [] and snapshot(filled_db) == before


def test_an_unknown_model_fails_with_what_the_endpoint_serves(server, tmp_path, filled_db):
    db = tmp_path / "copy.sqlite"
    db.write_bytes(filled_db.read_bytes())
    before_runs, before_traces, _ = snapshot(db)
    result = cli("run", "What is 1 + 1?", "--method", "single", "--base-url", server.base_url,
                 "--model", "no-such-model", db=db)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "Model 'no-such-model' was not found" in last and "It serves: fake-model" in last
    # the failed attempt is kept as a failed run (to inspect); nothing stored before changed
    runs, traces, _ = snapshot(db)
    [new] = [r for r in runs if r.id not in before_traces]
    assert new.status == "failed" and runs[1:] == before_runs
    assert {k: v for k, v in traces.items() if k != new.id} == before_traces


def test_an_unknown_model_in_the_library_fails_its_nodes_with_the_cause(server, store):
    provider = OpenAIProvider(server.base_url, "sk-x", "no-such-model", max_retries=0)
    trace = asyncio.run(run("What is 1 + 1?", RunConfig(method="vote", width=2), provider,
                            store.writer()))
    assert trace.status == "failed"
    assert {n.error_kind for n in trace.nodes} == {"model_not_found"}
    assert all("It serves: fake-model" in n.error for n in trace.nodes)


# ----- the same refusals in the library ----------------------------------------------------

LIBRARY_CASES = [
    ({"width": 0}, "width"), ({"width": 300}, "width"), ({"width": True}, "width"),
    ({"depth": 0}, "depth"), ({"depth": 2.5}, "depth"), ({"k": 0}, "k"),
    ({"distill": "topk", "width": 2, "k": 3}, "k"), ({"workspace_tokens": 15}, "workspace_tokens"),
    ({"max_tokens": 0}, "max_tokens"), ({"max_tokens": "100"}, "max_tokens"),
    ({"total_budget": 0}, "total_budget"), ({"temperature": 2.01}, "temperature"),
    ({"temperature": float("inf")}, "temperature"), ({"temperature": "hot"}, "temperature"),
    ({"concurrency": 0}, "concurrency"), ({"concurrency": 5000}, "concurrency"),
    ({"depth": 3, "width_schedule": (4, 2)}, "width_schedule"),
    ({"method": "vote", "width_schedule": (4,)}, "width_schedule"),
    ({"method": "magic"}, "method"), ({"distill": "bogus"}, "distill"), ({"seed": 1.5}, "seed"),
]


@pytest.mark.parametrize("kwargs, field", LIBRARY_CASES, ids=[repr(k) for k, _ in LIBRARY_CASES])
def test_an_out_of_range_setting_is_refused_by_the_library(kwargs, field):
    with pytest.raises(ConfigError) as caught:
        RunConfig(**kwargs)
    assert caught.value.field == field
    message = str(caught.value)
    assert message.startswith(f"{field}=") and "is invalid: " in message
    assert caught.value.allowed and caught.value.allowed in message


def test_library_refusals_write_nothing(store):
    provider = FakeProvider()
    with pytest.raises(ValueError, match="the question is empty"):
        asyncio.run(run("  ", RunConfig(), provider, store.writer()))
    with pytest.raises(ProviderError, match="not a valid URL") as caught:
        OpenAIProvider("localhost:8000/v1", "sk-x", "m")
    assert caught.value.kind == "bad_request"
    with pytest.raises(ProviderError, match="not a valid URL"):
        resolve_provider(EndpointSettings(base_url="127.0.0.1:8000", model="m"))
    with pytest.raises(ProviderError, match="no model named"):
        resolve_provider(EndpointSettings(base_url="http://127.0.0.1:9/v1"))
    for options in ({"timeout": 0}, {"max_retries": -1}):
        with pytest.raises(ProviderError) as caught:
            OpenAIProvider("http://127.0.0.1:9/v1", "sk-x", "m", **options)
        assert caught.value.kind == "bad_request"
    assert provider.calls == [] and store.list_runs() == []


# ----- a question too large for any model context ------------------------------------------


def test_a_question_too_long_for_the_endpoint_fails_with_its_context_message(server, store):
    """A question under the tool's own limit that the endpoint's context cannot hold: every
    call is refused as too long, and each node says so and what to do."""
    long_question = "What is 1 + 1? " + "Consider this carefully. " * 4_000  # ~100 KB
    assert len(long_question.encode()) < len(ONE_MB_QUESTION.encode()) // 10
    server.clear()
    server.inject("context_length")
    # One shared request for both drafts, as the endpoint is known to honour n: the one
    # injected refusal answers every call.
    provider = OpenAIProvider(server.base_url, "sk-x", "fake-model", max_retries=0,
                              memory=KnownCapabilities(server.base_url, "fake-model", n=True))
    trace = asyncio.run(run(long_question, RunConfig(method="vote", width=2), provider,
                            store.writer()))
    assert trace.status == "failed"
    assert {n.error_kind for n in trace.nodes} == {"context_length"}
    assert all("too long for the context window" in n.error and "Lower max_tokens" in n.error
               for n in trace.nodes)


def test_a_one_megabyte_question_is_refused_by_the_library_before_any_call(server, store):
    server.clear()
    provider = OpenAIProvider(server.base_url, "sk-x", "fake-model", max_retries=0)
    with pytest.raises(ValueError) as caught:
        asyncio.run(run(ONE_MB_QUESTION, RunConfig(method="single"), provider,
                        store.writer()))
    message = str(caught.value)
    assert "question" in message and any(c.isdigit() for c in message)
    assert server.chat_requests == [] and store.list_runs() == []


def test_a_one_megabyte_question_is_refused_by_the_command_line(server, tmp_path, capsys):
    # Run in-process: Linux refuses a single command-line argument over 128 KiB outright.
    db = tmp_path / "runs.sqlite"
    server.clear()
    code = cli_main.main(["run", ONE_MB_QUESTION, "--method", "single", "--base-url",
                          server.base_url, "--model", "fake-model", "--db", str(db)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "question" in err
    assert server.chat_requests == [] and Store(db).list_runs() == []


def test_an_unwritable_out_path_is_refused_before_the_run(server, tmp_path):
    server.clear()
    out = tmp_path / "no-such-folder" / "trace.json"
    result = cli("run", "What is 1 + 1?", "--method", "single", "--base-url", server.base_url,
                 "--model", "fake-model", "--out", str(out), db=tmp_path / "runs.sqlite")
    assert_refused(result, 2, str(out))
    assert server.chat_requests == []


# ----- bad stores ----------------------------------------------------------------------------


def test_a_file_that_is_not_a_store_is_refused_and_left_alone(tmp_path):
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_bytes(b"my notes, not a database\n" * 100)
    result = cli("list", db=not_a_db)
    assert_refused(result, 1, "cannot open run store", str(not_a_db), "not a database")
    assert not_a_db.read_bytes() == b"my notes, not a database\n" * 100


def test_a_store_from_a_newer_version_is_refused_and_left_alone(tmp_path, filled_db):
    db = tmp_path / "newer.sqlite"
    db.write_bytes(filled_db.read_bytes())
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 999")
    conn.close()
    before = db.read_bytes()
    result = cli("list", db=db)
    assert_refused(result, 1, "schema version 999", "upgrade")
    assert db.read_bytes() == before
    with pytest.raises(StoreError, match="newer than this version"):
        Store(db)


# ----- imports ---------------------------------------------------------------------------------


def _valid_trace_json(filled_db: Path) -> dict:
    store = Store(filled_db)
    return json.loads(store.get_trace(store.list_runs()[-1].id).to_json())


IMPORT_CASES = {
    "not-json": (b"{this is not json", ["not valid JSON"]),
    "empty-file": (b"", ["not valid JSON"]),
    "binary": (bytes(range(256)) * 4, ["not valid JSON"]),
    "a-list": (b"[1, 2, 3]", ["a trace is a JSON object", "list"]),
    "other-format": (b'{"format": "langsmith-run"}', ["not a PDR trace", "'pdr-trace/1'"]),
    "newer-version": (None, ["trace format version 'pdr-trace/2' is not supported",
                             "expected 'pdr-trace/1'"]),
    "missing-key": (None, ["node 0 is missing the key 'usage'"]),
    "wrong-type": (None, ["'nodes' must be list, not str"]),
    "lone-surrogate": (None, ["not valid Unicode"]),
}


def _import_bytes(case: str, filled_db: Path) -> bytes:
    raw, _ = IMPORT_CASES[case]
    if raw is not None:
        return raw
    data = _valid_trace_json(filled_db)
    if case == "newer-version":
        data["format"] = "pdr-trace/2"
    elif case == "missing-key":
        del data["nodes"][0]["usage"]
    elif case == "wrong-type":
        data["nodes"] = "r1-draft-0"
    elif case == "lone-surrogate":
        data["question"] = "\ud83d broken emoji"
    return json.dumps(data).encode()


@pytest.mark.parametrize("case", list(IMPORT_CASES))
def test_a_bad_trace_file_is_refused_and_nothing_is_imported(filled_db, tmp_path, case):
    path = tmp_path / f"{case}.json"
    path.write_bytes(_import_bytes(case, filled_db))
    before = snapshot(filled_db)
    result = cli("import", str(path), db=filled_db)
    assert_refused(result, 2, *IMPORT_CASES[case][1])
    assert snapshot(filled_db) == before
    with pytest.raises(TraceError):
        trace_from_json(path.read_bytes())


def test_a_missing_or_unreadable_trace_file_is_refused(filled_db, tmp_path):
    before = snapshot(filled_db)
    assert_refused(cli("import", str(tmp_path / "nope.json"), db=filled_db), 2,
                   "cannot read", "No such file or directory")
    assert_refused(cli("import", str(tmp_path), db=filled_db), 2, "cannot read",
                   "Is a directory")
    assert snapshot(filled_db) == before


def _huge_sparse_file(tmp_path: Path) -> Path:
    path = tmp_path / "huge.json"
    with path.open("wb") as handle:
        handle.truncate(200 * 2**20)  # sparse: instant, and takes no disk space
    return path


def test_a_200_megabyte_trace_file_is_refused_by_size(filled_db, tmp_path):
    path = _huge_sparse_file(tmp_path)
    before = snapshot(filled_db)
    result = cli("import", str(path), db=filled_db)
    assert_refused(result, 2, "210 MB", f"over {MAX_IMPORT_BYTES // 2**20} MiB")
    assert snapshot(filled_db) == before


def test_a_200_megabyte_trace_file_is_refused_before_it_is_read_into_memory(filled_db,
                                                                            tmp_path):
    path = _huge_sparse_file(tmp_path)
    # Peak memory of the import process alone, measured by a parent of its own.
    probe = (
        "import resource, subprocess, sys\n"
        "result = subprocess.run(sys.argv[1:], capture_output=True)\n"
        "print(result.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PDR_"))}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "pdr_core",
                          "import", str(path), "--db", str(filled_db)],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    code, peak_kib = map(int, out.stdout.split())
    assert code == 2
    assert peak_kib < 100 * 1024, f"peak memory {peak_kib // 1024} MiB for a refused import"


# ----- a remote endpoint with no key ----------------------------------------------------------


@pytest.mark.parametrize("url", ["https://api.example.com/v1", "https://llm.example.org:8443/v1"])
def test_a_remote_endpoint_without_a_key_is_refused_before_anything(filled_db, url):
    before = snapshot(filled_db)
    result = cli("run", "What is 1 + 1?", "--base-url", url, "--model", "m", db=filled_db)
    assert_refused(result, 1, "remote endpoint", "no API key", "OPENAI_API_KEY")
    assert snapshot(filled_db) == before


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/v1", "http://localhost:11434/v1",
                                 "http://192.168.1.20:8000/v1", "http://ollama:11434/v1"])
def test_an_endpoint_on_this_machine_or_network_needs_no_key(url):
    from pdr_core.providers import EndpointSettings, resolve_provider

    provider = resolve_provider(EndpointSettings(base_url=url, model="m"))
    assert provider.base_url == url
