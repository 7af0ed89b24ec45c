"""Running a candidate program against its tests, contained, in a separate process.

Model code is untrusted, so nothing runs unless a person switched execution on (the CLI's
`--execute-code`, the Settings toggle, or PDR_ALLOW_CODE_EXECUTION=1 for a server); an
Executor made without that permission returns a "disabled" result saying how to enable it.

What the containment does, every time: a fresh temporary directory as the working directory
(removed afterwards); an environment holding only PATH, LANG, HOME and TMPDIR (no keys); an
isolated interpreter (`python -I`); limits on wall-clock time, CPU time, address space,
file size and process count; its own session, killed whole when the run ends; stdout and
stderr captured and truncated. Where the machine allows it (util-linux `unshare` with user
namespaces), the process also gets its own user, network and process-id namespaces: no
network, and nothing it forks outlives the run. When the app runs as root and an
unprivileged user can run the interpreter, the program runs as that user.

What it does not do: it is not a virtual machine. Without the namespaces a program can
reach the network; a program running as the app's own user can read and write what that
user can; and a program can write fake results onto the result channel (the containment
protects the machine, not the verdict, from a hostile program).
"""

from __future__ import annotations

import json
import os
import pwd
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pdr_core.code.runner import MAX_TEXT

ENV_VAR = "PDR_ALLOW_CODE_EXECUTION"
DISABLED = ("code execution is off: model-written programs are untrusted and run only when "
            f"a person switches it on (--execute-code on the CLI, the Settings toggle, or "
            f"{ENV_VAR}=1 for a server)")
STATUSES = ("passed", "failed", "error", "timeout", "memory", "crashed", "disabled")
_RUNNER = (Path(__file__).with_name("runner.py")).read_text(encoding="utf-8")
_NAMESPACES = ("unshare", "--user", "--map-root-user", "--net", "--pid", "--fork",
               "--kill-child", "--mount-proc")
_UNPRIVILEGED = "nobody"
_CHUNK = 65_536
# How long, after the kill, the pipes may take to close as the last processes die.
_REAP_SECONDS = 5.0


def execution_allowed(flag: bool = False, environ: dict[str, str] | None = None) -> bool:
    """Whether a person switched execution on: the flag or toggle, or the variable set to 1."""
    env = os.environ if environ is None else environ
    return flag or env.get(ENV_VAR, "").strip() == "1"


@dataclass(frozen=True)
class Limits:
    """What one run of a program may use."""

    wall_seconds: float = 10.0
    cpu_seconds: int = 10
    memory_bytes: int = 1 << 30
    processes: int = 16  # counted per user; forks past it fail
    file_bytes: int = 16 << 20
    output_bytes: int = 16_000  # of stdout and of stderr each, kept

    def to_child(self) -> dict[str, int]:
        return {"cpu_seconds": self.cpu_seconds, "memory_bytes": self.memory_bytes,
                "processes": self.processes, "file_bytes": self.file_bytes}


@dataclass(frozen=True)
class TestResult:
    """One test: a statement of `check(candidate)` holding an assert."""

    index: int
    name: str  # its first source line
    passed: bool
    output: str | None = None  # repr of what the candidate returned, where the test compares
    error: str | None = None  # the assertion message or the trimmed traceback


@dataclass(frozen=True)
class Execution:
    """The outcome of one program against its tests."""

    status: str  # one of STATUSES
    tests: tuple[TestResult, ...] = ()
    error: str | None = None  # why the program never reached its tests, or what stopped it
    limit: str | None = None  # the limit it hit: "wall clock 10s", "memory 1024 MiB", ...
    stdout: str = ""
    stderr: str = ""
    truncated: bool = False  # stdout or stderr was cut at output_bytes
    seconds: float = 0.0
    isolation: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "tests"}
        return {**data, "tests": [t.__dict__ for t in self.tests]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Execution:
        tests = tuple(TestResult(**t) for t in data.get("tests", []))
        return cls(**{**data, "tests": tests})


@dataclass
class _Captured:
    """A stream read up to a limit; the rest is counted and dropped."""

    limit: int
    data: bytearray = field(default_factory=bytearray)
    total: int = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.limit - len(self.data)
        if room > 0:
            self.data += chunk[:room]

    def text(self) -> str:
        text = self.data.decode("utf-8", "replace")
        if self.total > len(self.data):
            text += f"\n... [truncated: {self.total:,} bytes in all, {len(self.data):,} kept]"
        return text


@dataclass(frozen=True)
class _Isolation:
    prefix: tuple[str, ...]
    user: int | None
    description: str


class Executor:
    """Runs programs with their tests under `limits`; refuses unless `allowed`."""

    def __init__(self, allowed: bool, limits: Limits | None = None):
        self.allowed = allowed
        self.limits = limits or Limits()
        self._isolation: _Isolation | None = None

    def isolation(self) -> _Isolation:
        """The strongest containment this machine offers, probed once per executor."""
        if self._isolation is None:
            self._isolation = _probe()
        return self._isolation

    def run(self, program: str, tests: str, entry_point: str) -> Execution:
        """Run `program` against `tests` (source defining `check(candidate)`)."""
        if not self.allowed:
            return Execution("disabled", error=DISABLED)
        isolation = self.isolation()
        base = Path(tempfile.mkdtemp(prefix="pdr-exec-"))
        try:
            return _run_in(base, isolation, self.limits, program, tests, entry_point)
        finally:
            shutil.rmtree(base)


def _environment(work: Path) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(work),
            "TMPDIR": str(work)}


def _unprivileged_user() -> int | None:
    """The uid to drop to when the app runs as root, or None."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(_UNPRIVILEGED).pw_uid
    except KeyError:
        return None


def _works(prefix: tuple[str, ...], user: int | None) -> bool:
    command = [*prefix, sys.executable, "-I", "-c", "import resource"]
    try:
        done = subprocess.run(command, capture_output=True, timeout=20, cwd="/",
                              env=_environment(Path("/")), user=user, group=user,
                              extra_groups=[] if user is not None else None, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _probe() -> _Isolation:
    user = _unprivileged_user()
    users = [user, None] if user is not None else [None]
    namespaces = shutil.which("unshare") is not None
    for prefix in ([_NAMESPACES] if namespaces else []) + [()]:
        for uid in users:
            if _works(prefix, uid):
                return _Isolation(prefix, uid, _describe(prefix, uid))
    return _Isolation((), None, _describe((), None))


def _describe(prefix: tuple[str, ...], user: int | None) -> str:
    parts = ["resource limits, a temporary directory, a clean environment"]
    parts.append("own user, network and process namespaces (no network)" if prefix else
                 "no namespaces on this machine: the program can reach the network")
    parts.append(f"runs as the unprivileged user {_UNPRIVILEGED}" if user is not None else
                 "runs as the app's own user: it can write where the app can")
    return "; ".join(parts)


def _run_in(base: Path, isolation: _Isolation, limits: Limits, program: str, tests: str,
            entry_point: str) -> Execution:
    os.chmod(base, 0o711)  # an unprivileged child must reach its work directory
    work = base / "work"
    work.mkdir()
    if isolation.user is not None:
        os.chown(work, isolation.user, isolation.user)
    payload = base / "payload.json"
    payload.write_text(json.dumps({"program": program, "tests": tests,
                                   "entry_point": entry_point, "limits": limits.to_child()}))
    read_end, write_end = os.pipe()
    started = time.monotonic()
    try:
        with payload.open("rb") as stdin:
            proc = subprocess.Popen(
                [*isolation.prefix, sys.executable, "-I", "-c", _RUNNER, str(write_end)],
                stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                pass_fds=(write_end,), cwd=work, env=_environment(work),
                start_new_session=True, user=isolation.user, group=isolation.user,
                extra_groups=[] if isolation.user is not None else None)
    except OSError as exc:
        os.close(read_end)
        return Execution("crashed", error=f"the program could not be started: {exc}",
                         isolation=isolation.description)
    finally:
        os.close(write_end)
    with os.fdopen(read_end, "rb") as results:
        streams, timed_out = _collect(proc, results, limits)
    return _verdict(streams, timed_out, proc.returncode, limits,
                    time.monotonic() - started, isolation.description)


def _collect(proc: subprocess.Popen, results, limits: Limits
             ) -> tuple[dict[str, _Captured], bool]:
    """Read stdout, stderr and the result channel until the process ends or the wall-clock
    limit passes; then kill its whole session. Returns the streams and whether it timed out."""
    streams = {"stdout": _Captured(limits.output_bytes), "stderr": _Captured(limits.output_bytes),
               "results": _Captured(4 * MAX_TEXT * 1_000)}
    deadline = time.monotonic() + limits.wall_seconds
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ, "stdout")
        selector.register(proc.stderr, selectors.EVENT_READ, "stderr")
        selector.register(results, selectors.EVENT_READ, "results")
        ended = _read(selector, streams, deadline, proc)
        _kill(proc)
        # What it forked holds the pipes until it is gone: read on to the end of every pipe,
        # so that the run returns only once nothing of it is left (bounded all the same).
        _read(selector, streams, time.monotonic() + _REAP_SECONDS, None)
    proc.stdout.close()
    proc.stderr.close()
    return streams, not ended


def _read(selector: selectors.BaseSelector, streams: dict[str, _Captured], deadline: float,
          proc: subprocess.Popen | None) -> bool:
    """Read into `streams` until every pipe ends, or `proc` (if given) exits; False when the
    deadline passed first."""
    while selector.get_map():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        for key, _ in selector.select(min(remaining, 0.5)):
            chunk = os.read(key.fileobj.fileno(), _CHUNK)
            if chunk:
                streams[key.data].add(chunk)
            else:
                selector.unregister(key.fileobj)
        if proc is not None and proc.poll() is not None and not selector.select(0):
            return True  # the runner ended; what it forked may still hold the pipes
    return True


def _kill(proc: subprocess.Popen) -> None:
    """Kill the program's whole session (and, with namespaces, everything it forked)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # already gone
    proc.wait()


def _records(captured: _Captured) -> list[dict[str, Any]]:
    records = []
    for line in captured.data.decode("utf-8", "replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line the program wrote over the channel, or a cut one
        if isinstance(record, dict):
            records.append(record)
    return records


def _test(record: dict[str, Any]) -> TestResult:
    return TestResult(int(record.get("index", 0)), str(record.get("name", "")),
                      bool(record.get("passed")), record.get("output"), record.get("error"))


def _verdict(streams: dict[str, _Captured], timed_out: bool, returncode: int, limits: Limits,
             seconds: float, isolation: str) -> Execution:
    records = _records(streams["results"])
    tests = tuple(_test(r) for r in records if r.get("kind") == "test")
    load = next((r for r in records if r.get("kind") == "load"), None)
    done = any(r.get("kind") == "done" for r in records)
    memory = any(r.get("memory") for r in records)
    common = {"tests": tests, "stdout": streams["stdout"].text(),
              "stderr": streams["stderr"].text(), "seconds": round(seconds, 3),
              "truncated": any(streams[s].total > streams[s].limit
                               for s in ("stdout", "stderr")),
              "isolation": isolation}
    mib = limits.memory_bytes >> 20
    if timed_out:
        return Execution("timeout", error=f"stopped after {limits.wall_seconds:g}s of wall "
                         "clock", limit=f"wall clock {limits.wall_seconds:g}s", **common)
    if memory:
        error = load["error"] if load else "a test ran out of memory"
        return Execution("memory", error=error, limit=f"memory {mib} MiB", **common)
    if returncode in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
        return Execution("timeout", error="stopped at the CPU time limit",
                         limit=f"cpu {limits.cpu_seconds}s", **common)
    if load is not None:
        return Execution("error", error=load.get("error"), **common)
    if not done:
        return Execution("crashed", error=f"the program ended the test run early (exit "
                         f"status {returncode})", **common)
    if not tests:
        return Execution("error", error="the tests hold no assert", **common)
    status = "passed" if all(t.passed for t in tests) else "failed"
    return Execution(status, **common)
