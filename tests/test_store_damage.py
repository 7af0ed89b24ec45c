"""Damaged and read-only run stores: checked on opening, read as far as they can be, never
written; every command and the app say so in one line, and the file stays as it was."""

from __future__ import annotations

import gc
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pdr_core.config import RunConfig
from pdr_core.run.methods import run
from pdr_core.store import Store, StoreError
from pdr_core.testing import FakeProvider

ROOT = Path(__file__).resolve().parent.parent
# Root ignores file modes: a command meant to find a store read-only runs without the
# capabilities that let root write anything (setpriv), as any other user would.
AS_USER = (["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]
           if os.geteuid() == 0 else [])
WRITES = (["run", "What is 2 + 2?", "--method", "single", "--local"],
          ["delete", "RUN"], ["import", "TRACE"])


def cli(*args: str, db: Path, prefix: list[str] | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PDR_"))}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([*(prefix or []), sys.executable, "-m", "pdr_core", *args,
                           "--db", str(db)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def filled_store(path: Path, runs: int = 12) -> list[str]:
    """A store of `runs` runs, its log copied into the file (one file to damage)."""
    store = Store(path)
    ids = []
    for i in range(runs):
        trace = __import__("asyncio").run(run(f"What is {i} + 1? " + "pad " * 300,
                                              RunConfig(width=3, depth=2), FakeProvider(),
                                              store.writer()))
        ids.append(trace.id)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return ids


def damage(path: Path, where: float) -> None:
    """Overwrite 8 KiB at `where` (a fraction of the file) with garbage."""
    size = path.stat().st_size
    with path.open("r+b") as file:
        file.seek(int(size * where))
        file.write(b"\xde\xad\xbe\xef" * 2048)


def one_line(result: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def exported(tmp_path) -> Path:
    """A trace file to import."""
    path = tmp_path / "one.json"
    path.write_text(__import__("asyncio").run(run("What is 1 + 1?", RunConfig(method="single"),
                                                  FakeProvider())).to_json())
    return path


def write_commands(ids: list[str], trace_file: Path) -> list[list[str]]:
    return [[{"RUN": ids[-1], "TRACE": str(trace_file)}.get(a, a) for a in cmd]
            for cmd in WRITES]


# ----- damaged --------------------------------------------------------------------------------


def test_a_damaged_store_is_read_as_far_as_it_can_be_and_never_written(tmp_path, exported):
    db = tmp_path / "runs.sqlite"
    ids = filled_store(db)
    damage(db, 0.5)
    before = digest(db)

    store = Store(db)
    assert store.damage
    with pytest.raises(StoreError, match="is damaged .* nothing is written to it. Save what"):
        store.writer()
    listed = cli("list", db=db)
    assert listed.returncode == 0
    assert ids[-1] in listed.stdout  # the run list is still readable
    assert [line for line in listed.stderr.splitlines()] == [
        f"warning: run store {db} is damaged ({store.damage}): reading only"]
    shown = cli("show", ids[-1], db=db)
    assert shown.returncode == 0 or one_line(shown).startswith(f"error: run store {db}")
    for command in write_commands(ids, exported):
        refused = cli(*command, db=db)
        assert refused.returncode == 1, (command, refused.stderr)
        line = one_line(refused)
        assert line.startswith(f"error: run store {db} is damaged"), line
        assert "export each run" in line and "move the file aside" in line
    assert digest(db) == before
    assert Store(db).list_runs(limit=100)  # and it still reads


def test_a_file_that_is_no_store_gives_one_line_everywhere(tmp_path):
    db = tmp_path / "runs.sqlite"
    filled_store(db, 2)
    damage(db, 0.0)  # the header: SQLite cannot even tell it is a database
    before = digest(db)
    for command in (["list"], ["show", "abc"], ["run", "What is 2 + 2?", "--local"]):
        result = cli(*command, db=db)
        assert result.returncode == 1
        line = one_line(result)
        assert line.startswith(f"error: cannot open run store {db}: file is not a database"
                               ". Check that this is the right file"), line
    assert digest(db) == before


def test_the_app_shows_one_line_for_a_damaged_store(tmp_path, monkeypatch):
    db = tmp_path / "runs.sqlite"
    filled_store(db, 2)
    damage(db, 0.0)
    monkeypatch.setenv("PDR_DB", str(db))
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "PDR_MODEL"):
        monkeypatch.delenv(name, raising=False)
    before = digest(db)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30).run()
    for page in ("pages/history.py", "pages/compare.py", "pages/evaluate.py",
                 "pages/prompts.py", None):
        assert not at.exception, at.exception
        [error] = at.error
        assert error.value.startswith(f"cannot open run store {db}: file is not a database")
        if page is not None:
            at.switch_page(page).run()
    assert digest(db) == before


def test_the_run_page_refuses_to_start_a_run_on_a_damaged_store(tmp_path, monkeypatch):
    db = tmp_path / "runs.sqlite"
    filled_store(db)
    damage(db, 0.5)
    monkeypatch.setenv("PDR_DB", str(db))
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "PDR_MODEL"):
        monkeypatch.delenv(name, raising=False)
    before = digest(db)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    at.session_state["provider"] = FakeProvider()
    at.run()
    at.text_area(key="question").input("What is 2 + 2?")
    at.run()
    at.button(key="run_button").click().run()
    assert not at.exception, at.exception
    assert any("is damaged" in e.value and "nothing is written" in e.value for e in at.error)
    assert digest(db) == before


# ----- read-only ------------------------------------------------------------------------------


@pytest.fixture(params=["log files kept", "log files gone"])
def read_only(tmp_path, request) -> tuple[Path, list[str]]:
    """A store in a folder that, like the file, this user may only read: with the -wal and
    -shm files SQLite keeps beside it while it is open elsewhere, or without them."""
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "runs.sqlite"
    ids = filled_store(db, 3)
    gc.collect()  # the store's connections close with their event loops
    keep = sqlite3.connect(db)
    keep.execute("SELECT count(*) FROM runs").fetchone()
    if request.param == "log files gone":
        keep.close()
    assert (db.parent / "runs.sqlite-shm").exists() == (request.param == "log files kept")
    db.chmod(0o444)
    folder.chmod(0o555)
    yield db, ids
    folder.chmod(0o755)
    keep.close()


def test_a_read_only_store_is_listed_shown_and_exported_not_written(read_only, tmp_path,
                                                                     exported):
    if AS_USER and shutil.which("setpriv") is None:
        pytest.fail("running as root needs setpriv to run a command as an ordinary user")
    db, ids = read_only
    before = digest(db)
    files = sorted(p.name for p in db.parent.iterdir())
    listed = cli("list", db=db, prefix=AS_USER)
    assert listed.returncode == 0, listed.stderr
    assert all(run_id in listed.stdout for run_id in ids) and listed.stderr == ""
    shown = cli("show", ids[0], db=db, prefix=AS_USER)
    assert shown.returncode == 0 and f"run: {ids[0]}" in shown.stdout, shown.stderr
    out = tmp_path / "copy.json"
    exported_run = cli("export", ids[0], "--out", str(out), db=db, prefix=AS_USER)
    assert exported_run.returncode == 0 and ids[0] in out.read_text()
    for command in write_commands(ids, exported):
        refused = cli(*command, db=db, prefix=AS_USER)
        assert refused.returncode == 1, (command, refused.stderr)
        line = one_line(refused)
        assert line.startswith(f"error: run store {db} is read-only"), line
        assert "--db PATH" in line
    assert digest(db) == before
    assert sorted(p.name for p in db.parent.iterdir()) == files


def test_a_store_that_cannot_be_created_says_so(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        result = cli("list", db=folder / "runs.sqlite", prefix=AS_USER)
    finally:
        folder.chmod(0o755)
    assert result.returncode == 1
    assert one_line(result).startswith(f"error: cannot create run store {folder}/runs.sqlite")
