"""Shared fixtures."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pdr_core.config import RunConfig
from pdr_core.run.methods import run
from pdr_core.store import Store
from pdr_core.testing import FakeProvider
from pdr_core.trace import Trace

QUESTION = "What is 17 * 3 + 1?"
REFERENCE = "52"


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "runs.sqlite")


@pytest.fixture
def db(tmp_path, monkeypatch) -> Path:
    """A fresh store file for the app (through PDR_DB), no endpoint configured and no saved
    settings (an empty config folder)."""
    path = tmp_path / "runs.sqlite"
    monkeypatch.setenv("PDR_DB", str(path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "PDR_MODEL"):
        monkeypatch.delenv(name, raising=False)
    return path


def plain(markdown: str) -> str:
    """The text a markdown source escaped with `pdr_core.render.textfmt.inert` shows (the word
    joiners that break autolinks aside)."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown).replace("\u2060", "")


def run_fake(config: RunConfig, provider: FakeProvider | None = None, sink=None,
             question: str = QUESTION, reference: str | None = REFERENCE) -> Trace:
    """Run `config` on the fake provider, synchronously."""
    return asyncio.run(run(question, config, provider or FakeProvider(), sink,
                           reference=reference))


def wait_for_calls(db: Path, calls: int, timeout: float = 30) -> str:
    """The id of the newest run in `db` once it has made `calls` calls (another process
    is running it); fails the test if that takes longer than `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if db.exists() and (runs := Store(db).list_runs()) and runs[0].calls >= calls:
            return runs[0].id
        time.sleep(0.02)
    pytest.fail(f"the run in {db} never made {calls} calls")


def kill_when(proc: subprocess.Popen, db: Path, calls: int) -> str:
    """SIGKILL `proc` once its run in `db` has made `calls` calls; the run's id."""
    try:
        run_id = wait_for_calls(db, calls)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    return run_id


def started_job(at):
    """The job the app session `at` (an AppTest) started last: runs live in the server
    process's registry, and the session names the one it shows."""
    from ui.components import jobs

    return jobs().get(at.session_state["active_run"])


def launch_evaluation(at, timeout: float = 30):
    """Click Evaluate's Launch in the AppTest `at`, wait for the evaluation it started, and
    run the page again to show its results."""
    at.button(key="eval_launch").click().run()
    assert not at.exception, at.exception
    [job] = at.session_state["eval_jobs"].values()
    job.wait(timeout=timeout)
    return at.run()


def interrupt_after(store: Store, question: str, config: RunConfig, provider: FakeProvider,
                    calls: int, reference: str | None = None) -> Trace:
    """Start a run, cancel it once `calls` of its calls are stored, and return it as the
    store keeps it (interrupted, every finished node kept)."""

    async def interrupted() -> None:
        task = asyncio.create_task(run(question, config, provider, store.writer(),
                                       reference=reference))
        while not store.list_runs() or store.list_runs()[0].calls < calls:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(interrupted())
    [summary] = store.list_runs()
    return store.get_trace(summary.id)
