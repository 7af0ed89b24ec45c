"""Hostile text (ESC sequences, OSC 52 clipboard writes, BEL, CR, NUL, C1 CSI) from model
output and imported traces never reaches the terminal: every byte the command line prints
is printable, newline or tab, and extracted answers hold no control character."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import run_fake
from openai_server import OpenAIServer

from pdr_core.config import RunConfig
from pdr_core.extraction import extract_answer
from pdr_core.render.textfmt import terminal_safe
from pdr_core.testing import FakeProvider

ROOT = Path(__file__).resolve().parent.parent
# clear the screen, set the window title, write the clipboard, ring, overwrite, NUL, CSI
HOSTILE = "4\x1b[2J\x1b]0;owned\x07\x1b]52;c;ZWNobyBoaQ==\x07\r\x00\x9b31m\x7f2"
IN_ARGV = HOSTILE.replace("\x00", "")  # a command line cannot hold NUL


def hostile_answer(messages, seed) -> str:
    return HOSTILE


def cli(*args: str, db: Path, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PDR_"))}
    env.update({"PYTHONPATH": str(ROOT), **(env_extra or {})})
    return subprocess.run([sys.executable, "-m", "pdr_core", *args, "--db", str(db)],
                          capture_output=True, env=env, cwd=ROOT, timeout=120)


def assert_inert(output: bytes, name: str) -> None:
    bad = sorted({b for b in output if (b < 0x20 and b not in b"\n\t") or b == 0x7f})
    assert not bad, f"{name}: control bytes {bad}"
    text = output.decode("utf-8")
    c1 = sorted({hex(ord(c)) for c in text if 0x80 <= ord(c) <= 0x9f})
    assert not c1, f"{name}: C1 controls {c1}"


def test_extracted_answers_hold_no_control_character():
    assert extract_answer(f"Done. \\boxed{{{HOSTILE}}}") == terminal_safe(HOSTILE)
    for text in (f"Done. \\boxed{{{HOSTILE}}}", f"The answer is {HOSTILE}",
                 f"Answer: {HOSTILE}", f"x = {HOSTILE}", HOSTILE):
        answer = extract_answer(text) or ""
        assert not any(ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f for c in answer), answer


def test_run_show_list_and_export_print_nothing_a_terminal_obeys(tmp_path):
    db = tmp_path / "runs.sqlite"
    outputs: dict[str, bytes] = {}
    with OpenAIServer(answer=hostile_answer) as server:
        result = cli("run", f"What is {IN_ARGV}?", "--width", "2", "--base-url",
                     server.base_url, "--model", "fake-model", "--answer", IN_ARGV, db=db)
    assert result.returncode == 0, result.stderr
    outputs["run stdout"], outputs["run stderr"] = result.stdout, result.stderr
    run_id = result.stdout.decode().split("run: ")[1].split()[0]
    assert "answer: 4\\x1b[2J" in result.stdout.decode()  # shown, escaped

    # an imported trace: hostile question, answers and error text
    failing = FakeProvider(answer=hostile_answer,
                           fail=lambda m, seed: f"down{HOSTILE}" if seed == 1 else None)
    trace = run_fake(RunConfig(method="vote", width=3), failing, question=HOSTILE,
                     reference=HOSTILE)
    path = tmp_path / "hostile.json"
    path.write_text(trace.to_json(), encoding="utf-8")
    imported = cli("import", str(path), db=db)
    assert imported.returncode == 0, imported.stderr
    imported_id = imported.stdout.decode().strip()
    for name, args in {"list": ("list",), "show": ("show", imported_id),
                       "show run": ("show", run_id), "export": ("export", imported_id),
                       "missing": ("show", f"nope{IN_ARGV}")}.items():
        shown = cli(*args, db=db)
        outputs[f"{name} stdout"], outputs[f"{name} stderr"] = shown.stdout, shown.stderr
    assert b"down4\\x1b[2J" in outputs["show stdout"]  # the failed node's error, escaped
    for name, output in outputs.items():
        assert_inert(output, name)
    # the exported JSON is still the same trace, control characters and all
    exported = json.loads(outputs["export stdout"])
    assert exported["question"] == HOSTILE
