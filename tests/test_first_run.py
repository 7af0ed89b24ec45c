"""What a new user meets first, through the command line: one round goes out as one wave,
no run waits to learn whether the endpoint honours `n`, and the first request goes out soon
after the process starts."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from openai_server import OpenAIServer, peak_in_flight

from pdr_core.store import Store

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "What is 17 * 3 + 1?"


def cli(*args: str, db: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PDR_"))}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "pdr_core", *args, "--db", str(db)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


def run_cli(server: OpenAIServer, db: Path, *flags: str) -> dict[str, str]:
    result = cli("run", QUESTION, "--base-url", server.base_url, "--model", "fake-model",
                 *flags, db=db)
    assert result.returncode == 0, result.stderr
    return dict(line.split(": ", 1) for line in result.stdout.strip().splitlines())


def test_a_vote_of_16_with_the_default_concurrency_sends_all_16_at_once(tmp_path):
    with OpenAIServer(support_n=False, latency=0.3) as server:
        run_cli(server, tmp_path / "runs.sqlite", "--method", "vote", "--width", "16")
        drafts = [r for r in server.wait_idle() if r["body"].get("max_tokens") == 1024]
    assert len(drafts) == 16
    assert peak_in_flight(drafts) == 16


def test_a_lower_concurrency_the_user_sets_still_holds(tmp_path):
    with OpenAIServer(support_n=False, latency=0.2) as server:
        run_cli(server, tmp_path / "runs.sqlite", "--method", "vote", "--width", "6",
                "--concurrency", "2")
        requests = server.wait_idle()
    assert peak_in_flight(requests) == 2


def test_help_says_what_the_default_concurrency_is():
    result = subprocess.run([sys.executable, "-m", "pdr_core", "run", "--help"],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert "widest round" in " ".join(result.stdout.split())


def n_memory(db: Path, server: OpenAIServer):
    known = Store(db).recall(server.base_url, "fake-model", "n")
    return None if known is None else known.value


def test_a_fresh_process_sends_its_first_round_as_one_wave_and_learns_n_beside_it(tmp_path):
    db = tmp_path / "runs.sqlite"
    with OpenAIServer(support_n=False, latency=0.3) as server:
        run_cli(server, db, "--width", "16", "--depth", "2")
        server.wait_idle()
        requests = server.chat_requests  # not the one refused look for a tokenize route
    first = min(requests, key=lambda r: r["start"])
    drafts = [r for r in requests if r["body"]["messages"] == first["body"]["messages"]]
    probes = [r for r in requests if r["body"]["max_tokens"] == 1]
    assert len(drafts) == 16 and all(r["body"].get("n", 1) == 1 for r in drafts)
    # No request for 16 choices first: every draft went out before any generation ended.
    assert max(r["start"] for r in drafts) < min(r["end"] for r in drafts)
    [probe] = probes
    assert probe["body"]["n"] == 2
    assert n_memory(db, server) is False


def test_what_an_endpoint_does_is_kept_in_the_store_file(tmp_path):
    db = tmp_path / "runs.sqlite"
    Store(db).remember("http://127.0.0.1:9/v1", "m", "n", True)
    known = Store(db).recall("http://127.0.0.1:9/v1", "m", "n")
    assert known is not None and known.value is True and known.age < 60
    assert Store(db).recall("http://127.0.0.1:9/v1", "other", "n") is None


def test_an_endpoint_that_changes_is_learnt_again(tmp_path):
    db = tmp_path / "runs.sqlite"
    with OpenAIServer(support_n=True) as server:
        run_cli(server, db, "--method", "vote", "--width", "4")
        assert n_memory(db, server) is True
        # It stops honouring n: the shared request comes back with one choice, the other
        # three are asked for one by one, and the store says so.
        server.support_n = False
        server.clear()
        fields = run_cli(server, db, "--method", "vote", "--width", "4")
        assert fields["calls"] == "4" and fields["answer"] == "52"
        assert [r["body"].get("n", 1) for r in server.wait_idle()] == [4, 1, 1, 1]
        assert n_memory(db, server) is False
        # It honours n again: a remembered "no" older than an hour is asked again.
        server.support_n = True
        server.clear()
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE endpoint_capabilities SET learned_at = learned_at - 7200")
        run_cli(server, db, "--method", "vote", "--width", "4")
        assert sorted(r["body"].get("n", 1) for r in server.wait_idle()) == [1, 1, 1, 1, 2]
        assert n_memory(db, server) is True
        # Remembered now: the next process shares its drafts at once.
        server.clear()
        run_cli(server, db, "--method", "vote", "--width", "4")
        assert [r["body"].get("n", 1) for r in server.wait_idle()] == [4]


def test_an_evaluation_sends_each_round_as_one_wave_and_keeps_what_it_learnt(tmp_path):
    data = tmp_path / "set.jsonl"
    data.write_text(json.dumps({"id": "add", "question": QUESTION, "answer": "52"}) + "\n")
    db = tmp_path / "runs.sqlite"
    with OpenAIServer(support_n=False, latency=0.3) as server:
        result = cli("eval", str(data), "--methods", "vote", "--width", "16", "--base-url",
                     server.base_url, "--model", "fake-model", "--out", str(tmp_path / "out"),
                     db=db)
        assert result.returncode == 0, result.stderr
        requests = server.wait_idle()
        drafts = [r for r in requests if r["body"].get("max_tokens") == 1024]
        assert len(drafts) == 16 and peak_in_flight(drafts) == 16
        # The probe of n queued behind the 16 drafts: the evaluation let it answer before
        # its event loop ended, so the next process knows.
        assert n_memory(db, server) is False


def test_eval_help_says_what_the_default_concurrency_of_a_run_is():
    result = subprocess.run([sys.executable, "-m", "pdr_core", "eval", "--help"],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert "widest round" in " ".join(result.stdout.split())


# What a question run must not import: figures, tables, the app, the progress bars that
# only a terminal shows (a disabled tqdm bar still imports multiprocessing for its lock),
# the code tasks' executor and problem files, and the evaluations' modules (the parser of
# `eval`, with its sweep flags, is not built for a `run`).
NOT_ON_THE_RUN_PATH = ("plotly", "pandas", "streamlit", "tqdm", "multiprocessing",
                       "pdr_core.render.report", "pdr_core.code", "pdr_core.evals", "ctypes")
SEEN = """
import json, sys
from pdr_core.cli.main import main
code = main(sys.argv[2:])
print(json.dumps([code, sorted(set(sys.argv[1].split(",")) & set(sys.modules))]))
"""


def test_a_question_run_imports_nothing_it_does_not_use(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PDR_"))}
    env["PYTHONPATH"] = str(ROOT)
    with OpenAIServer() as server:
        result = subprocess.run(
            [sys.executable, "-c", SEEN, ",".join(NOT_ON_THE_RUN_PATH), "run", QUESTION,
             "--method", "vote", "--width", "2", "--base-url", server.base_url, "--model",
             "fake-model", "--db", str(tmp_path / "runs.sqlite")],
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    code, imported = json.loads(result.stdout.strip().splitlines()[-1])
    assert code == 0 and imported == []


# A method that makes no call and answers with what the collector is doing while it runs.
GC_PROBE = '''
import gc

from pdr_core.run.api import Method


async def run(ctx):
    import openai  # imported already by the provider; here only to find its classes

    alive = {id(o) for o in gc.get_objects()}  # frozen objects are in no generation
    return f"collecting {gc.isenabled()}, SDK frozen {id(openai.AsyncOpenAI) not in alive}"


def probe():
    return Method("gc-probe", "gc probe", run)
'''


def test_a_run_collects_as_usual_with_the_sdks_objects_frozen(tmp_path):
    # The start-up collects nothing while it imports, then freezes what it made, the SDK's
    # classes included (they were imported after the freeze), and collection goes on.
    (tmp_path / "gc_probe.py").write_text(GC_PROBE, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PDR_"))}
    env["PYTHONPATH"] = f"{ROOT}:{tmp_path}"
    with OpenAIServer() as server:
        result = subprocess.run(
            [sys.executable, "-m", "pdr_core", "run", QUESTION, "--method", "gc_probe:probe",
             "--base-url", server.base_url, "--model", "fake-model",
             "--db", str(tmp_path / "runs.sqlite")],
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "answer: collecting True, SDK frozen True" in result.stdout
