"""`python -m pdr_core eval` end to end, against the project's OpenAI-protocol server."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from openai_server import OpenAIServer

from pdr_core.evals.export import RESULT_COLUMNS, SUMMARY_COLUMNS

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def server():
    with OpenAIServer(models=["fake-model"]) as srv:
        yield srv


def cli(*args: str, db: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PDR_"))}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "pdr_core", *args, "--db", str(db)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def test_eval_writes_results_and_summary_then_resumes(server, tmp_path):
    # Questions the server's fake model answers right ("What is ...?") and one it does not.
    data = tmp_path / "set.jsonl"
    rows = [{"id": "add", "question": "What is 17 * 3 + 1?", "answer": "52"},
            {"id": "mul", "question": "What is 6 * 7?", "answer": "42"},
            {"id": "odd", "question": "Name a prime.", "answer": "2"}]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out, db = tmp_path / "out", tmp_path / "runs.sqlite"
    server.clear()
    args = ("eval", str(data), "--methods", "single,vote,sr,pdr", "--width", "2,3",
            "--depth", "2", "--max-tokens", "256", "--concurrency", "4", "--base-url",
            server.base_url, "--model", "fake-model", "--name", "smoke", "--out", str(out))
    result = cli(*args, db=db)
    assert result.returncode == 0, result.stderr

    columns, results = read_csv(out / "results.csv")
    assert tuple(columns) == RESULT_COLUMNS == (
        "problem_id", "method", "width", "depth", "max_tokens", "correct", "oracle", "b_seq",
        "b_total", "rounds_saved", "tokens_saved", "run_id", "status", "matched", "settings")
    # arms: single, vote w2, vote w3, sr d2, pdr w2 d2, pdr w3 d2; three problems each
    assert len(results) == 6 * 3
    assert {r["status"] for r in results} == {"completed"}
    by = {(r["problem_id"], r["method"], r["width"]): r for r in results}
    assert by[("add", "single", "1")]["correct"] == "true"
    assert by[("mul", "pdr", "3")]["correct"] == "true"
    assert by[("odd", "single", "1")]["correct"] == "false"
    assert all(int(r["b_seq"]) > 0 and int(r["b_total"]) >= int(r["b_seq"]) for r in results)

    columns, summary = read_csv(out / "summary.csv")
    assert tuple(columns) == SUMMARY_COLUMNS == (
        "method", "width", "depth", "max_tokens", "n", "accuracy", "ci_low", "ci_high",
        "mean_b_seq", "mean_b_total", "oracle_accuracy", "tokens_saved", "matched", "settings")
    assert [(s["method"], s["width"], s["depth"]) for s in summary] == [
        ("single", "1", "1"), ("vote", "2", "1"), ("vote", "3", "1"), ("sr", "1", "2"),
        ("pdr", "2", "2"), ("pdr", "3", "2")]
    assert all(s["n"] == "3" for s in summary)
    single = summary[0]
    assert float(single["accuracy"]) == pytest.approx(2 / 3)
    assert float(single["ci_low"]) < 2 / 3 < float(single["ci_high"])
    assert (out / "evaluation.json").exists()

    # the summary table on stdout, progress on stderr
    assert "pdr summary w3 d2 t256" in result.stdout and "accuracy" in result.stdout
    # no progress bar when stderr is not a terminal (tests/test_cli_progress.py has one)
    assert "%|" not in result.stderr and "/18 runs" not in result.stderr
    eval_id = re.search(r"--eval-id (\S+)", result.stderr).group(1)
    requests = len(server.chat_requests)
    assert requests > 0

    # the same evaluation again: every cell is complete, no call is made
    again = cli(*args, "--eval-id", eval_id, db=db)
    assert again.returncode == 0, again.stderr
    assert len(server.chat_requests) == requests
    _, results_again = read_csv(out / "results.csv")
    assert [r["run_id"] for r in results_again] == [r["run_id"] for r in results]

    listed = cli("list", "--search", f"eval:{eval_id}", "--limit", "100", db=db)
    assert listed.stdout.count("completed") == 18


def test_eval_usage_errors(server, tmp_path):
    db = tmp_path / "runs.sqlite"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "question": "q", "answer": "1"}\n{"id": "b"\n')
    common = ("--base-url", server.base_url, "--model", "fake-model", "--out",
              str(tmp_path / "o"))
    result = cli("eval", str(bad), *common, db=db)
    assert result.returncode == 2 and "bad.jsonl line 2: not valid JSON" in result.stderr
    result = cli("eval", "gen:arith:2", "--methods", "single,beam", *common, db=db)
    assert result.returncode == 2 and "methods" in result.stderr
    result = cli("eval", "gen:arith:2", "--width", "0", *common, db=db)
    assert result.returncode == 2 and "width" in result.stderr
    result = cli("eval", "gen:arith:2", "--methods", "single", "--eval-id", "x1", *common,
                 db=db)
    assert result.returncode == 0, result.stderr
    result = cli("eval", "gen:arith:3", "--methods", "single", "--eval-id", "x1", *common,
                 db=db)
    assert result.returncode == 2 and "other problems" in result.stderr
