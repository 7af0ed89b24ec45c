"""Hostile model output (markup, script URLs, bidi overrides, NUL, a 50,000-character line)
goes through run -> store -> export -> import byte for byte: stored as text, never altered,
never interpreted. (How the pages render it inert is tested in test_app.py.)"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from pdr_core.config import RunConfig
from pdr_core.render.textfmt import terminal_safe
from pdr_core.run.methods import run
from pdr_core.store import Store
from pdr_core.testing import FakeProvider, default_answer
from pdr_core.trace_import import trace_from_json

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = (
    '<script>alert("x")</script><img src=x onerror="alert(1)">'
    "[click](javascript:alert(document.cookie)) <a href='javascript:void(0)'>a</a> "
    "\u202edesrever\u202c \x00nul\x00 \r\n\ttab "
    + "W" * 50_000
)
QUESTION = "What is 2 + 2? <script>alert('q')</script> \u202e\x00"


def hostile(messages, seed):
    return HOSTILE if seed in (0, 1000) else default_answer(messages, seed)


def cli(*args: str, db: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PDR_"))}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "pdr_core", *args, "--db", str(db)],
                          capture_output=True, text=True, encoding="utf-8", env=env, cwd=ROOT,
                          timeout=120)


def test_hostile_output_survives_store_export_and_import_byte_for_byte(tmp_path):
    store = Store(tmp_path / "a.sqlite")
    config = RunConfig(method="pdr", width=2, depth=2, distill="topk", k=1, max_tokens=100_000,
                       workspace_tokens=100_000)
    trace = asyncio.run(run(QUESTION, config, FakeProvider(answer=hostile), store.writer(),
                            reference=HOSTILE))
    assert trace.status == "completed"
    hostile_nodes = [n for n in trace.nodes if HOSTILE in n.text]
    # draft 0 and the final call wrote it; the workspace quoted it
    assert {n.id for n in hostile_nodes} >= {"r1-draft-0", "r2-final-0"}
    # an answer is printed on terminals: its control characters are escaped (NUL, CR)
    answer = terminal_safe(HOSTILE.strip())
    assert trace.node("r1-draft-0").answer == answer and "\\x00nul" in answer
    assert trace.final_answer == answer and trace.correct is True

    stored = store.get_trace(trace.id)
    assert stored.to_dict() == trace.to_dict()
    [summary] = store.list_runs()
    # the run list holds a preview of the question (SQLite's substr stops at a NUL)
    assert QUESTION.startswith(summary.question) and "<script>" in summary.question
    assert summary.final_answer == answer

    # export to a file, import into another store: every text identical, code point for code
    # point, and the file is UTF-8 JSON (NUL escaped, nothing else changed)
    exported = tmp_path / "trace.json"
    exported.write_bytes(stored.to_json().encode("utf-8"))
    raw = exported.read_bytes()
    assert b"\x00" not in raw and "\u202e".encode() in raw
    other = Store(tmp_path / "b.sqlite")
    new_id = other.import_trace(trace_from_json(raw))
    again = other.get_trace(new_id)
    assert again.to_dict() == trace.to_dict() | {"id": new_id}
    for before, after in zip(trace.nodes, again.nodes, strict=True):
        assert after.text.encode("utf-8") == before.text.encode("utf-8")
        assert after.messages == before.messages
    assert again.question == QUESTION and again.reference_answer == HOSTILE


def test_hostile_output_survives_the_command_line_export_and_import(tmp_path):
    db, other_db = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    trace = asyncio.run(run(QUESTION, RunConfig(method="vote", width=2, max_tokens=100_000),
                            FakeProvider(answer=hostile), Store(db).writer()))
    out = tmp_path / "out.json"
    exported = cli("export", trace.id, "--out", str(out), db=db)
    assert exported.returncode == 0, exported.stderr
    imported = cli("import", str(out), db=other_db)
    assert imported.returncode == 0, imported.stderr
    again = Store(other_db).get_trace(imported.stdout.strip())
    assert [n.text for n in again.nodes] == [n.text for n in trace.nodes]
    assert HOSTILE in again.nodes[0].text and again.question == QUESTION
    # stdout export is the same JSON document
    printed = cli("export", trace.id, db=db)
    assert json.loads(printed.stdout) == json.loads(out.read_text(encoding="utf-8"))
