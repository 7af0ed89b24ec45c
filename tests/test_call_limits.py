"""How long a call may take and how often it is tried: --timeout and --max-retries (or
PDR_TIMEOUT and PDR_MAX_RETRIES), checked with a message that says what to fix, and the
"still waiting" line a terminal shows while calls hang."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from openai_server import OpenAIServer

from pdr_core.cli.progress import CallProgress
from pdr_core.events import NodeFailed, NodeFinished, NodeStarted
from pdr_core.providers import EndpointRequest, ProviderError, choose_endpoint, resolve_provider
from pdr_core.store import Store

ROOT = Path(__file__).resolve().parent.parent


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def cli(*args: str, db: Path, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PDR_"))}
    env.update({"PYTHONPATH": str(ROOT), **(env_extra or {})})
    return subprocess.run([sys.executable, "-m", "pdr_core", *args, "--db", str(db)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


def started(node: str) -> NodeStarted:
    return NodeStarted("r", node, "draft", 1, 0, [], [])


# ----- the settings -------------------------------------------------------------------------


def test_flags_beat_the_environment_which_beats_the_defaults():
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "PDR_MODEL": "m"}

    def provider(environ: dict, **flags):
        return resolve_provider(choose_endpoint(EndpointRequest(**flags), environ))

    default = provider(env)
    assert (default.timeout, default.max_retries) == (600.0, 2)
    from_env = provider({**env, "PDR_TIMEOUT": "2.5", "PDR_MAX_RETRIES": "7"})
    assert (from_env.timeout, from_env.max_retries) == (2.5, 7)
    flagged = provider({**env, "PDR_TIMEOUT": "2.5", "PDR_MAX_RETRIES": "7"},
                       timeout="30", max_retries="0")
    assert (flagged.timeout, flagged.max_retries) == (30.0, 0)


@pytest.mark.parametrize("name, value", [
    ("timeout", "abc"), ("timeout", "0"), ("timeout", "-1"), ("timeout", "nan"),
    ("timeout", "inf"), ("timeout", "1e9"), ("max_retries", "-1"), ("max_retries", "1.5"),
    ("max_retries", "lots"), ("max_retries", "101"), ("max_retries", "²"),
])
def test_a_bad_value_is_refused_with_what_to_fix(name, value):
    settings = choose_endpoint(EndpointRequest(local=True, **{name: value}), {})
    with pytest.raises(ProviderError) as caught:
        resolve_provider(settings)  # even for the local model, which has no use for them
    message = str(caught.value)
    flag = "--" + name.replace("_", "-")
    assert message.startswith(f"{flag} (or PDR_{name.upper()}) must be a ")
    assert message.endswith(f"not {value!r}") and "default" in message


# ----- the command line ---------------------------------------------------------------------


@pytest.mark.parametrize("how", ["flags", "environment"])
def test_a_hanging_endpoint_fails_after_the_timeout_and_retries_asked_for(tmp_path, how):
    db = tmp_path / "runs.sqlite"
    env = {"OPENAI_BASE_URL": "", "PDR_MODEL": "fake-model"}
    with OpenAIServer() as server:
        env["OPENAI_BASE_URL"] = server.base_url
        server.inject("timeout", 2, seconds=5)
        if how == "flags":
            args = ["--timeout", "0.5", "--max-retries", "1"]
        else:
            args = []
            env |= {"PDR_TIMEOUT": "0.5", "PDR_MAX_RETRIES": "1"}
        start = time.monotonic()
        result = cli("run", "What is 2 + 2?", "--method", "single", *args, db=db,
                     env_extra=env)
        elapsed = time.monotonic() - start
        requests = server.chat_requests
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert "within 0.5 s (the timeout) after 1 retry" in last, last
    assert "--timeout" in last  # says how to raise it
    assert len(requests) == 2 and elapsed < 20  # two tries of half a second, not ten minutes


def test_bad_flags_fail_in_one_line_before_anything_is_stored(tmp_path):
    db = tmp_path / "runs.sqlite"
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "PDR_MODEL": "fake-model"}
    for args, extra in ((["--timeout", "soon"], {}), (["--max-retries", "-2"], {}),
                        ([], {"PDR_TIMEOUT": "0"}), ([], {"PDR_MAX_RETRIES": "many"})):
        result = cli("run", "What is 2 + 2?", *args, db=db, env_extra={**env, **extra})
        assert result.returncode == 1, result.stderr
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("error: --") and "must be a" in line, line
        assert "Traceback" not in result.stderr
    assert Store(db).list_runs() == []
    for command in (["resume", "abc"], ["fork", "abc", "--node", "x"],
                    ["eval", "gen:arith:1", "--out", str(tmp_path)]):
        assert "--max-retries" in cli(*command, "--help", db=db).stdout


# ----- the "still waiting" line ---------------------------------------------------------------


def test_a_terminal_is_told_which_calls_are_still_waiting():
    term = Terminal()
    bar = CallProgress(3, stream=term, waiting_every=0.05)
    bar(started("r1-draft-0"))
    bar(started("r1-draft-1"))
    time.sleep(0.3)
    bar(NodeFinished("r", "r1-draft-0", "t", None, {}))
    bar(NodeFailed("r", "r1-draft-1", "boom"))
    lines = [line for line in term.getvalue().splitlines() if "still waiting" in line]
    time.sleep(0.2)  # nothing in flight any more: no more lines
    bar.close()
    assert lines and lines[0].startswith("still waiting for 2 calls (longest 0 s)"), lines
    after = [line for line in term.getvalue().splitlines() if "still waiting" in line]
    assert after == lines


def test_quick_calls_and_piped_output_get_no_waiting_line():
    term = Terminal()
    quick = CallProgress(1, stream=term, waiting_every=0.2)
    for _ in range(5):
        quick(started("r1-draft-0"))
        time.sleep(0.05)
        quick(NodeFinished("r", "r1-draft-0", "t", None, {}))
    quick.close()
    assert "still waiting" not in term.getvalue()

    piped = io.StringIO()
    bar = CallProgress(1, stream=piped, waiting_every=0.05)
    bar(started("r1-draft-0"))
    time.sleep(0.2)
    bar.close()
    assert piped.getvalue() == ""
    assert bar.waiting()[0] == 1  # it knew, and said nothing
