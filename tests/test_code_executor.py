"""The executor: real HumanEval problems through real contained processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pdr_core.code.executor import (
    DISABLED,
    ENV_VAR,
    Execution,
    Executor,
    Limits,
    execution_allowed,
)
from pdr_core.code.problems import load_humaneval

PROBLEMS = {p.id: p for p in load_humaneval()}
ZERO = PROBLEMS["HumanEval/0"]  # has_close_elements, 7 asserts
WALL = 3.0


@pytest.fixture(scope="module")
def executor() -> Executor:
    return Executor(allowed=True, limits=Limits(wall_seconds=WALL, cpu_seconds=3))


def run(executor: Executor, body: str) -> Execution:
    return executor.run(ZERO.question + body, ZERO.tests, ZERO.entry_point)


def _runner_processes() -> int:
    """Processes still running the executor's child (its source is on their command line)."""
    count = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue  # ended while we looked
            count += b"The child side of the executor" in cmdline
    return count


def test_every_canonical_solution_passes(executor):
    for problem in PROBLEMS.values():
        result = executor.run(problem.question + problem.reference_solution, problem.tests,
                              problem.entry_point)
        assert result.status == "passed", (problem.id, result.error, result.tests)
        assert result.tests and all(t.passed for t in result.tests)


def test_the_tests_see_the_programs_own_helpers(executor):
    # As in HumanEval/32, whose tests call the prompt's `poly`, not only the candidate.
    program = "def double(x):\n    return 2 * x\n\ndef quad(x):\n    return double(double(x))\n"
    tests = ("SEEN = 1\n\ndef check(candidate):\n    assert candidate(1) == double(2)\n"
             "    assert quad(SEEN) == 4\n")
    result = executor.run(program, tests, "quad")
    assert result.status == "passed", result.tests
    # The tests' own setup does not leak into the program's names.
    leak = executor.run(program + "def seen():\n    return SEEN\n",
                        "SEEN = 1\n\ndef check(candidate):\n    assert seen() == 1\n", "quad")
    assert leak.status == "failed" and "NameError" in leak.tests[0].error


def test_each_assert_is_one_test_with_the_value_the_candidate_gave(executor):
    result = run(executor, "    return True\n")
    assert result.status == "failed"
    assert len(result.tests) == 7
    assert [t.passed for t in result.tests] == [True, False, True, False, True, True, False]
    failed = result.tests[1]
    assert failed.output == "True"
    assert "AssertionError" in failed.error and "True" in failed.error
    assert failed.name.startswith("assert candidate([1.0, 2.0, 3.9")


def test_empty_body_fails(executor):
    result = run(executor, "    pass\n")
    assert result.status == "failed"
    assert all(t.output == "None" for t in result.tests)


def test_syntax_error_is_an_error_with_its_line(executor):
    result = run(executor, "    return (\n")
    assert result.status == "error"
    assert "SyntaxError" in result.error
    assert result.tests == ()


def test_missing_entry_point(executor):
    result = executor.run("def other(x):\n    return x\n", ZERO.tests, ZERO.entry_point)
    assert result.status == "error"
    assert "has_close_elements" in result.error


def test_infinite_loop_is_stopped_at_the_wall_clock(executor):
    started = time.monotonic()
    result = run(executor, "    while True:\n        pass\n")
    assert time.monotonic() - started < WALL + 5
    assert result.status == "timeout"
    assert result.limit == f"wall clock {WALL:g}s"


def test_two_gigabytes_is_out_of_memory(executor):
    result = run(executor, "    block = bytearray(2 * 1024 ** 3)\n    return len(block) > 0\n")
    assert result.status == "memory"
    assert result.limit == "memory 1024 MiB"
    assert "MemoryError" in result.tests[0].error


def test_fork_bomb_is_contained(executor):
    bomb = ("    import os\n    while True:\n        try:\n            os.fork()\n"
            "        except OSError:\n            pass\n")
    started = time.monotonic()
    result = run(executor, bomb)
    assert time.monotonic() - started < WALL + 10
    assert result.status in ("timeout", "crashed")
    assert _runner_processes() == 0  # nothing it forked outlived the run


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="seccomp is Linux's")
def test_the_candidate_cannot_fork_even_as_root(executor):
    # RLIMIT_NPROC does not bind root: a seccomp filter refuses fork and clone instead.
    program = ("import os\n"
               "def spawn():\n"
               "    try:\n"
               "        pid = os.fork()\n"
               "    except OSError:\n"
               "        return 'refused'\n"
               "    if pid == 0:\n"
               "        os._exit(0)\n"
               "    return 'forked'\n")
    result = executor.run(program, "def check(candidate):\n    assert candidate() == 'refused'\n",
                          "spawn")
    assert result.status == "passed", result


def test_a_megabyte_of_print_is_truncated(executor):
    result = executor.run("def shout():\n    print('x' * 1_000_000)\n    return 1\n",
                          "def check(candidate):\n    assert candidate() == 1\n", "shout")
    assert result.truncated
    assert len(result.stdout) < 20_000
    assert "truncated: 1,000,001 bytes in all, 16,000 kept" in result.stdout
    assert result.status == "passed"  # the tests still ran


@pytest.mark.parametrize("name", ["OPENAI_API_KEY", "PDR_SOME_PLANTED_TOKEN"])
def test_a_planted_key_is_not_in_its_environment(executor, monkeypatch, name):
    # Any variable, not only the names of known keys: the environment is built, not filtered.
    monkeypatch.setenv(name, "sk-planted-secret")
    result = executor.run(
        "import os\ndef leak(name):\n    return os.environ.get(name)\n",
        f"def check(candidate):\n    assert candidate({name!r}) == 'sk-planted-secret'\n",
        "leak")
    assert result.status == "failed"
    assert result.tests[0].output == "None"


PROC_ENVIRON = ("import glob\n"
                "def leak(secret):\n"
                "    found = []\n"
                "    for path in glob.glob('/proc/*/environ'):\n"
                "        try:\n"
                "            data = open(path, 'rb').read()\n"
                "        except OSError:\n"
                "            continue\n"
                "        if secret.encode() in data:\n"
                "            found.append(path)\n"
                "    return found\n")


def test_a_planted_key_cannot_be_read_from_another_process(executor):
    # A process of the app's user holding a key in its environment (as the app itself
    # does): a process namespace hides it, and the unprivileged user cannot read root's.
    # Without either (the README says so) a program running as the app's user could.
    isolation = executor.isolation()
    if not isolation.prefix and isolation.user is None:
        pytest.skip("no process namespace and no other user on this machine")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"],
        env={"PDR_SOME_PLANTED_TOKEN": "sk-planted-secret"}, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b"up\n"  # started, its environment in place
        assert b"sk-planted-secret" in Path(f"/proc/{holder.pid}/environ").read_bytes()
        result = executor.run(PROC_ENVIRON, "def check(candidate):\n"
                              "    assert candidate('sk-planted-') == []\n", "leak")
    finally:
        holder.kill()
        holder.wait()
    assert result.status == "passed", result.tests


def test_files_land_in_a_fresh_temporary_directory_that_is_removed(executor, tmp_path,
                                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)
    program = ("import os\ndef where(name):\n    open(name, 'w').write('x')\n"
               "    return os.getcwd()\n")
    result = executor.run(program, "def check(candidate):\n    assert candidate('out.txt')"
                          " == '/'\n", "where")
    cwd = result.tests[0].output.strip("'")
    assert cwd != str(tmp_path) and "pdr-exec-" in cwd
    assert not (tmp_path / "out.txt").exists()
    assert not Path(cwd).exists()  # removed with everything written in it


def test_nothing_runs_unless_switched_on(tmp_path):
    marker = tmp_path / "ran"
    result = Executor(allowed=False).run(
        f"open({str(marker)!r}, 'w')\ndef f():\n    return 1\n",
        "def check(candidate):\n    assert candidate() == 1\n", "f")
    assert result.status == "disabled"
    assert result.error == DISABLED and "--execute-code" in DISABLED
    assert not marker.exists()


def test_switch(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert not execution_allowed()
    assert execution_allowed(flag=True)
    monkeypatch.setenv(ENV_VAR, "1")
    assert execution_allowed()
    assert not execution_allowed(environ={ENV_VAR: "yes please"})


def test_result_round_trips_as_a_dict(executor):
    result = run(executor, "    return False\n")
    assert Execution.from_dict(result.to_dict()) == result
