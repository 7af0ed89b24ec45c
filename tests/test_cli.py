"""The command line end to end, against the project's OpenAI-protocol server on 127.0.0.1."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from openai_server import OpenAIServer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def server():
    with OpenAIServer(models=["fake-model", "other-model"]) as srv:
        yield srv


def cli(*args: str, db: Path, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "PDR_"))}
    env.update({"PYTHONPATH": str(ROOT), **(env_extra or {})})
    return subprocess.run([sys.executable, "-m", "pdr_core", *args, "--db", str(db)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


def test_run_end_to_end_then_list_show_export_import_delete(server, tmp_path):
    db = tmp_path / "runs.sqlite"
    out, out2 = tmp_path / "trace.json", tmp_path / "second.json"
    server.clear()
    result = cli("run", "What is 17 * 3 + 1?", "--answer", "52", "--width", "3", "--depth",
                 "2", "--base-url", server.base_url, "--model", "fake-model", "--out", str(out),
                 db=db)
    assert result.returncode == 0, result.stderr
    fields = dict(line.split(": ", 1) for line in result.stdout.strip().splitlines())
    assert fields["answer"] == "52" and fields["correct"] == "true"
    assert fields["calls"] == "5"  # 3 drafts, 1 summary, 1 final
    assert int(fields["b_seq"]) > 0 and int(fields["b_total"]) > int(fields["b_seq"])
    run_id = fields["run"]
    # quiet when stderr is not a terminal (tests/test_cli_progress.py shows the bar)
    assert "%|" not in result.stderr and "calls [" not in result.stderr
    # A fresh store does not know whether the endpoint honours n: the three drafts go out
    # as three requests, and a one-token request for two choices learns it beside them.
    requests = server.chat_requests
    assert sorted((r["body"].get("n", 1), r["body"]["max_tokens"]) for r in requests) == [
        (1, 1024)] * 5 + [(2, 1)]

    trace = json.loads(out.read_text())
    assert trace["format"] == "pdr-trace/1" and trace["id"] == run_id
    assert trace["config"]["model"] == "fake-model"
    assert trace["config"]["base_url"] == server.base_url
    assert trace["budget"]["calls"] == 5
    # The store remembers it: the next process sends the three drafts as one request with
    # n=3 (one prefill), then the summary and the final call.
    server.clear()
    again = cli("run", "What is 17 * 3 + 1?", "--width", "3", "--depth", "2", "--base-url",
                server.base_url, "--model", "fake-model", "--out", str(out2), db=db)
    assert again.returncode == 0, again.stderr
    assert [r["body"].get("n", 1) for r in server.chat_requests] == [3, 1, 1]
    # a shared request's usage is split between its choices, so drafts say it is estimated
    shared = json.loads(out2.read_text())
    assert [n["usage"].get("estimated") for n in shared["nodes"]] == [True] * 3 + [False] * 2

    listed = cli("list", db=db)
    assert listed.returncode == 0 and run_id in listed.stdout and "completed" in listed.stdout
    shown = cli("show", run_id[:8], db=db)
    assert shown.returncode == 0 and "r1-distill-0" in shown.stdout

    exported = cli("export", run_id, "--format", "json", db=db)
    assert json.loads(exported.stdout) == trace

    imported = cli("import", str(out), db=db)
    assert imported.returncode == 0, imported.stderr
    new_id = imported.stdout.strip()
    assert new_id != run_id
    again = json.loads(cli("export", new_id, db=db).stdout)
    assert again | {"id": run_id} == trace

    deleted = cli("delete", new_id, db=db)
    assert deleted.returncode == 0
    assert new_id not in cli("list", db=db).stdout


def test_endpoint_from_environment(server, tmp_path):
    result = cli("run", "What is 2 + 2?", "--method", "single", db=tmp_path / "r.sqlite",
                 env_extra={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-x",
                            "PDR_MODEL": "other-model"})
    assert result.returncode == 0, result.stderr
    assert "answer: 4" in result.stdout


def test_max_in_flight_from_the_environment_is_checked_before_anything_is_stored(
    server, tmp_path
):
    db = tmp_path / "r.sqlite"
    env = {"OPENAI_BASE_URL": server.base_url, "PDR_MODEL": "fake-model"}
    bad = cli("run", "What is 2 + 2?", "--method", "single", db=db,
              env_extra={**env, "PDR_MAX_IN_FLIGHT": "lots"})
    assert bad.returncode == 1
    assert bad.stderr.strip() == (
        "error: PDR_MAX_IN_FLIGHT must be a whole number of 1 or more (the requests one "
        "process keeps open at once; default 128), not 'lots'")
    assert cli("list", db=db).stdout.strip() == ""
    # A server that ignores n, so that the three drafts are three requests.
    with OpenAIServer(support_n=False, latency=0.05) as separate:
        good = cli("run", "What is 2 + 2?", "--method", "vote", "--width", "3", db=db,
                   env_extra={**env, "OPENAI_BASE_URL": separate.base_url,
                              "PDR_MAX_IN_FLIGHT": "1"})
        requests = sorted((r for r in separate.wait_idle() if r["body"]["max_tokens"] != 1),
                          key=lambda r: r["start"])  # not the one-token probe of n
    assert good.returncode == 0, good.stderr
    # One at a time, as asked: no two of them overlapped at the server.
    assert len(requests) == 3
    assert all(a["end"] <= b["start"] for a, b in zip(requests, requests[1:], strict=False))


def test_failures_exit_non_zero_with_one_line_reason(server, tmp_path):
    db = tmp_path / "runs.sqlite"
    bad_config = cli("run", "What is 1 + 1?", "--width", "0", "--base-url", server.base_url,
                     "--model", "fake-model", db=db)
    assert bad_config.returncode == 2
    assert bad_config.stderr.strip() == (
        "error: width=0 is invalid: a whole number from 1 to 256"
    )

    unknown = cli("run", "What is 1 + 1?", "--method", "single", "--base-url", server.base_url,
                  "--model", "no-such-model", db=db)
    assert unknown.returncode == 1
    last = unknown.stderr.strip().splitlines()[-1]
    assert last.startswith("error: run failed") and "fake-model" in last

    missing = cli("show", "doesnotexist", db=db)
    assert missing.returncode == 1 and "no run with id 'doesnotexist'" in missing.stderr

    bad_file = tmp_path / "bad.json"
    bad_file.write_text('{"format": "pdr-trace/9"}')
    refused = cli("import", str(bad_file), db=db)
    assert refused.returncode == 2 and "pdr-trace/9" in refused.stderr
    listed = cli("list", db=db)
    assert "single" in listed.stdout  # the failed run is kept, nothing was imported
    assert len(listed.stdout.strip().splitlines()) == 1


def test_a_planted_key_appears_in_no_output_row_or_trace(tmp_path):
    key = "sk-PLANTED-0123456789abcdef"
    db = tmp_path / "runs.sqlite"
    out = tmp_path / "trace.json"
    with OpenAIServer(api_key=key) as good:
        ok = cli("run", "What is 3 + 4?", "--width", "2", "--model", "fake-model", "--out",
                 str(out), db=db,
                 env_extra={"OPENAI_API_KEY": key, "OPENAI_BASE_URL": good.base_url})
    with OpenAIServer(api_key="sk-the-right-one-999") as strict:
        refused = cli("run", "What is 3 + 4?", "--method", "single", "--model",
                      "fake-model", db=db,
                      env_extra={"OPENAI_API_KEY": key, "OPENAI_BASE_URL": strict.base_url})
    assert ok.returncode == 0, ok.stderr
    assert refused.returncode == 1 and "API key" in refused.stderr
    exported = cli("export", ok.stdout.split("run: ")[1].strip(), db=db)
    artefacts = {
        "stdout": ok.stdout + refused.stdout + exported.stdout,
        "stderr": ok.stderr + refused.stderr + exported.stderr,
        "trace": out.read_text(),
    }
    for path in tmp_path.iterdir():  # the store and its WAL files
        artefacts[path.name] = path.read_bytes().decode("latin-1")
    for name, text in artefacts.items():
        assert key not in text and "PLANTED" not in text, name
