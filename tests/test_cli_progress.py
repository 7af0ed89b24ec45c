"""Command-line progress: a tqdm bar with calls or runs done, failures, tokens and the time
left when stderr is a terminal (a real pseudo-terminal for the commands), nothing when it is
not."""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import pytest
from openai_server import OpenAIServer
from test_method_plugins import REF, plugin_dir  # noqa: F401

from pdr_core.cli.progress import CallProgress, EvalBar
from pdr_core.evals.spec import EvalProgress
from pdr_core.events import NodeFailed, NodeFinished

ROOT = Path(__file__).resolve().parent.parent
# tqdm redraws with carriage returns and ANSI cursor moves; the last state is what matters.
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def finished(node: str, tokens: int, **kw) -> NodeFinished:
    return NodeFinished("r", node, "text", None,
                        {"prompt_tokens": tokens // 2, "completion_tokens": tokens - tokens // 2},
                        **kw)


def frames(text: str) -> list[str]:
    return [f.strip() for f in re.split(r"[\r\n]+", ANSI.sub("", text)) if f.strip()]


def test_call_bar_counts_calls_failures_and_tokens_on_a_terminal():
    term = Terminal()
    bar = CallProgress(5, stream=term)
    bar(finished("r1-draft-0", 100))
    bar(finished("r1-draft-1", 50))
    bar(NodeFailed("r", "r1-draft-2", "boom"))
    bar(finished("r1-distill-0", 0, call=False))  # a workspace made by no call
    bar(finished("r2-final-0", 20, reused=True))  # a fork's reused call: done, no tokens
    bar.close()
    last = frames(term.getvalue())[-1]
    assert "4/5 calls" in last and "failed 1, 150 tok" in last and "<" in last, last


def test_eval_bar_starts_at_the_runs_done_before_and_shows_the_time_left():
    term = Terminal()
    bar = EvalBar(stream=term)
    bar(EvalProgress(2, 6))
    bar(EvalProgress(3, 6, 4.0, 0, 1200))
    bar(EvalProgress(6, 6, 0.0, 1, 5321))
    bar.close()
    shown = frames(term.getvalue())
    assert shown[0].startswith("33%") and "2/6 runs" in shown[0]
    assert "6/6 runs" in shown[-1] and "failed 1, 5,321 tok" in shown[-1]


def test_no_bar_when_not_on_a_terminal():
    plain = io.StringIO()
    bar = CallProgress(2, stream=plain)
    bar(finished("r1-draft-0", 10))
    bar.close()
    evals = EvalBar(stream=plain)
    evals(EvalProgress(0, 1))
    evals(EvalProgress(1, 1, 0.0, 0, 10))
    evals.close()
    assert plain.getvalue() == ""


@pytest.fixture(scope="module")
def server():
    with OpenAIServer(models=["fake-model"]) as srv:
        yield srv


def on_a_terminal(*args: str, db: Path, path: str = "") -> tuple[int, str, str]:
    """Run the command line with stderr on a pseudo-terminal (`path` joins PYTHONPATH);
    (code, stdout, stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PDR_"))}
    env["PYTHONPATH"] = f"{ROOT}:{path}" if path else str(ROOT)
    master, slave = pty.openpty()
    # 40 rows of 120 columns, as a terminal window has (a fresh pseudo-terminal has 0 x 0)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "pdr_core", *args, "--db", str(db)],
                            stdout=subprocess.PIPE, stderr=slave, env=env, cwd=ROOT)
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:  # a full terminal buffer would block the child
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child closed its end
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    stdout, _ = proc.communicate(timeout=120)
    reader.join(timeout=10)
    os.close(master)
    return proc.returncode, stdout.decode(), b"".join(chunks).decode(errors="replace")


def test_eval_shows_a_bar_on_a_terminal_and_nothing_when_piped(server, tmp_path):
    args = ("eval", "gen:arith:3", "--methods", "single,pdr", "--width", "2",
            "--max-tokens", "128", "--base-url", server.base_url, "--model", "fake-model")
    code, stdout, stderr = on_a_terminal(*args, "--out", str(tmp_path / "a"),
                                         db=tmp_path / "a.sqlite")
    assert code == 0, stderr
    last = [f for f in frames(stderr) if "%|" in f][-1]
    assert last.startswith("100%") and "6/6 runs" in last and "failed 0" in last
    assert re.search(r"[\d,]+ tok", last) and "<00:00" in last
    assert "accuracy" in stdout  # the summary table stays on stdout

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PDR_"))}
    piped = subprocess.run([sys.executable, "-m", "pdr_core", *args, "--out",
                            str(tmp_path / "b"), "--db", str(tmp_path / "b.sqlite")],
                           capture_output=True, text=True, cwd=ROOT,
                           env={**env, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert piped.returncode == 0, piped.stderr
    assert "/6 runs [" not in piped.stderr and "%|" not in piped.stderr


def test_run_shows_a_call_bar_on_a_terminal(server, tmp_path):
    code, stdout, stderr = on_a_terminal(
        "run", "What is 17 * 3 + 1?", "--width", "3", "--depth", "2", "--base-url",
        server.base_url, "--model", "fake-model", db=tmp_path / "runs.sqlite")
    assert code == 0, stderr
    last = [f for f in frames(stderr) if "%|" in f][-1]
    assert "5/5 calls" in last and "failed 0" in last
    assert "answer: 52" in stdout


def test_a_plugins_call_bar_counts_its_declared_schedule(server, tmp_path,
                                                        plugin_dir):  # noqa: F811
    # n drafts (its declared schedule), whatever the width and depth a pdr run would make
    code, stdout, stderr = on_a_terminal(
        "run", "What is 17 * 3 + 1?", "--method", REF, "--n", "3", "--width", "5",
        "--depth", "2", "--base-url", server.base_url, "--model", "fake-model",
        db=tmp_path / "runs.sqlite", path=str(plugin_dir))
    assert code == 0, stderr
    last = [f for f in frames(stderr) if "%|" in f][-1]
    assert last.startswith("100%") and "3/3 calls" in last, last


def test_import_of_many_files_shows_a_bar_and_names_the_refused_one(server, tmp_path):
    db = tmp_path / "runs.sqlite"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PDR_"))}
    env["PYTHONPATH"] = str(ROOT)
    subprocess.run([sys.executable, "-m", "pdr_core", "run", "What is 6 * 7?", "--width", "2",
                    "--depth", "1", "--base-url", server.base_url, "--model", "fake-model",
                    "--out", str(tmp_path / "t.json"), "--db", str(db)],
                   check=True, capture_output=True, env=env, cwd=ROOT, timeout=120)
    trace = json.loads((tmp_path / "t.json").read_text())
    files = []
    for i in range(3):
        path = tmp_path / f"t{i}.json"
        path.write_text(json.dumps({**trace, "id": f"copy{i}"}))
        files.append(str(path))
    (tmp_path / "bad.json").write_text('{"format": "pdr-trace/9"}')
    files.insert(1, str(tmp_path / "bad.json"))

    code, stdout, stderr = on_a_terminal("import", *files, db=db)
    assert code == 2
    assert len(stdout.split()) == 3  # one new run id per imported file
    shown = frames(stderr)
    assert any(f.startswith(f"error: {tmp_path / 'bad.json'}: ") and "pdr-trace/9" in f
               for f in shown)
    assert "4/4 files" in [f for f in shown if "%|" in f][-1]
    assert shown[-1] == "error: 1 of 4 files refused (named above); the others were imported"
