"""Command-line edges: a question from a file or standard input, an evaluation with no runs
in flight, a reader that stops reading (`list | head`), and a run still marked running."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from openai_server import OpenAIServer

from pdr_core.config import RunConfig
from pdr_core.run.methods import run
from pdr_core.store import Store
from pdr_core.testing import FakeProvider

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def server():
    with OpenAIServer() as srv:
        yield srv


def command(*args: str, db: Path, server: OpenAIServer | None = None) -> list[str]:
    return [sys.executable, "-m", "pdr_core", *args, "--db", str(db)]


def environment(server: OpenAIServer | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PDR_"))}
    env["PYTHONPATH"] = str(ROOT)
    if server is not None:
        env |= {"OPENAI_BASE_URL": server.base_url, "PDR_MODEL": "fake-model"}
    return env


def cli(*args: str, db: Path, server: OpenAIServer | None = None,
        stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(command(*args, db=db), input=stdin, capture_output=True, text=True,
                          env=environment(server), cwd=ROOT, timeout=120)


def one_error(result: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    [line] = result.stderr.strip().splitlines()
    return line


# ----- the question from a file or standard input -------------------------------------------


def test_the_question_from_a_file_or_standard_input(server, tmp_path):
    db = tmp_path / "runs.sqlite"
    question = "What is 17 * 3 + 1?\nShow your work.\n"
    path = tmp_path / "question.txt"
    path.write_text(question, encoding="utf-8")
    for args, stdin in ((["--question-file", str(path)], None),
                        (["--question-file", "-"], question), (["-"], question)):
        result = cli("run", *args, "--method", "single", db=db, server=server, stdin=stdin)
        assert result.returncode == 0, result.stderr
        assert "answer: 52" in result.stdout
    assert [r.question for r in Store(db).list_runs()] == [question] * 3


@pytest.mark.parametrize("args, words", [
    ([], ["either the question as an argument or --question-file PATH"]),
    (["What?", "--question-file", "q.txt"], ["a question argument and --question-file",
                                             "one of them"]),
    (["--question-file", "missing.txt"], ["question-file='missing.txt'", "can read",
                                          "No such file"]),
    (["--question-file", "latin1.txt"], ["UTF-8 text"]),
])
def test_a_question_that_cannot_be_read_is_refused_in_one_line(server, tmp_path, args, words):
    (tmp_path / "q.txt").write_text("What is 1 + 1?")
    (tmp_path / "latin1.txt").write_bytes("Combien font 2 \xe9l\xe9ments ?".encode("latin-1"))
    db = tmp_path / "runs.sqlite"
    result = subprocess.run(command("run", *args, db=db), capture_output=True, text=True,
                            env=environment(server), cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    line = one_error(result)
    assert all(word in line for word in words), line
    assert not server.chat_requests or Store(db).list_runs() == []


def test_a_two_megabyte_question_is_refused_with_its_size(server, tmp_path):
    db = tmp_path / "runs.sqlite"
    path = tmp_path / "huge.txt"
    path.write_text("What is 1 + 1? " * 140_000, encoding="utf-8")  # 2.1 MB
    server.clear()
    result = cli("run", "--question-file", str(path), db=db, server=server)
    assert result.returncode == 2
    assert "2,100,000 characters" in one_error(result) and "at most 32,000 tokens" in \
        result.stderr
    assert server.chat_requests == [] and Store(db).list_runs() == []


# ----- eval --concurrency 0 -----------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-3"])
def test_eval_with_no_runs_in_flight_is_refused_in_one_line(server, tmp_path, value):
    db = tmp_path / "runs.sqlite"
    result = cli("eval", "gen:arith:2", "--methods", "single", "--concurrency", value,
                 "--out", str(tmp_path / "out"), db=db, server=server)
    assert result.returncode == 2
    assert one_error(result) == (f"error: concurrency={int(value)} is invalid: a whole number "
                                 "of runs in flight at once, at least 1")


# ----- a reader that stops reading ------------------------------------------------------------


def test_list_into_a_reader_that_stops_early_ends_quietly(tmp_path):
    db = tmp_path / "runs.sqlite"
    store = Store(db)
    trace = asyncio.run(run("What is 1 + 1? " + "pad " * 30, RunConfig(method="single"),
                            FakeProvider()))
    for _ in range(1500):  # far more lines than a pipe holds (64 KiB)
        store.import_trace(trace)
    proc = subprocess.Popen(command("list", "--limit", "2000", db=db), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=environment(), cwd=ROOT)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # as `head -1` does
    error = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0
    assert b"What is 1 + 1?" in first
    assert error == "", error


# ----- show of a run still marked running -----------------------------------------------------


def test_show_gives_a_status_to_every_node_of_a_run_still_marked_running(tmp_path):
    """A run another machine was running (a store copied here while it ran): the node in
    flight says so, instead of an empty status."""
    db = tmp_path / "runs.sqlite"
    store = Store(db)

    async def started() -> str:
        provider = FakeProvider(delay=30)
        task = asyncio.create_task(run("What is 1 + 1?", RunConfig(method="single"), provider,
                                       store.writer()))
        await asyncio.sleep(0.3)
        [summary] = store.list_runs()
        with sqlite3.connect(db) as conn:  # what a copy from elsewhere would hold
            conn.execute("UPDATE runs SET owner_host = 'another-machine'")
        task.cancel()
        return summary.id

    run_id = asyncio.run(started())
    with sqlite3.connect(db) as conn:  # undo the cancellation's record: still running there
        conn.execute("UPDATE runs SET status = 'running'")
        conn.execute("DELETE FROM events WHERE payload LIKE '%NodeFailed%'"
                     " OR payload LIKE '%RunFinished%'")
    result = cli("show", run_id, db=db)
    assert result.returncode == 0, result.stderr
    [node] = [line for line in result.stdout.splitlines() if "r1-final-0" in line]
    assert "running: no answer yet (started 20" in node, node
