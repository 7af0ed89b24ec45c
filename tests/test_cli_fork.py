"""`fork` and `resume` on the command line, against the loopback OpenAI-protocol server."""

import json
import os
import subprocess
import sys

from conftest import kill_when
from openai_server import OpenAIServer
from test_cli import ROOT, cli

from pdr_core.store import Store


def calls(server: OpenAIServer) -> list[dict]:
    """The requests of the runs' calls: not the one-token request that learns whether the
    endpoint honours n (sent once per store, beside the first shared round)."""
    return [r for r in server.chat_requests if r["body"].get("max_tokens") != 1]


def test_fork_reuses_upstream_and_calls_only_downstream(tmp_path):
    db = tmp_path / "runs.sqlite"
    with OpenAIServer(support_n=False) as server:
        ran = cli("run", "What is 17 * 3 + 1?", "--answer", "52", "--width", "4", "--depth",
                  "3", "--base-url", server.base_url, "--model", "fake-model", db=db)
        assert ran.returncode == 0, ran.stderr
        parent_id = ran.stdout.split("run: ")[1].strip()
        assert len(calls(server)) == 11
        prompts = tmp_path / "prompts.json"
        prompts.write_text(json.dumps({"summary": "Only list the answers.\n{question}\n{drafts}"}))
        forked = cli("fork", parent_id, "--node", "r2-distill-0", "--prompts", str(prompts),
                     db=db, env_extra={"OPENAI_API_KEY": "sk-x"})
        assert forked.returncode == 0, forked.stderr
        # the run's own endpoint was used again: exactly the distill call and the final
        assert len(calls(server)) == 11 + 2
        assert calls(server)[-2]["body"]["messages"][-1]["content"].startswith(
            "Only list the answers.")
    child_id = forked.stdout.split("run: ")[1].strip()
    store = Store(db)
    child, parent = store.get_trace(child_id), store.get_trace(parent_id)
    assert (child.parent_run_id, child.parent_node_id) == (parent_id, "r2-distill-0")
    for node in parent.nodes[:9]:
        assert child.node(node.id).reused and child.node(node.id).text == node.text
    assert "9 call(s) reused" in forked.stderr


def test_fork_refuses_an_unknown_node(tmp_path):
    db = tmp_path / "runs.sqlite"
    with OpenAIServer() as server:
        ran = cli("run", "What is 1 + 1?", "--method", "single", "--base-url", server.base_url,
                  "--model", "fake-model", db=db)
    refused = cli("fork", ran.stdout.split("run: ")[1].strip(), "--node", "r9-final-0", db=db)
    assert refused.returncode == 2
    assert "node='r9-final-0' is invalid" in refused.stderr and "r1-final-0" in refused.stderr


def test_resume_after_the_process_is_killed(tmp_path):
    db = tmp_path / "runs.sqlite"
    with OpenAIServer(latency=0.4, support_n=False) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PDR_"))}
        proc = subprocess.Popen(
            [sys.executable, "-m", "pdr_core", "run", "What is 6 * 7?", "--width", "3",
             "--depth", "3", "--base-url", server.base_url, "--model", "fake-model",
             "--db", str(db)],
            cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        run_id = kill_when(proc, db, 3)
        before = Store(db).get_trace(run_id)
        assert before.status == "interrupted"
        finished = sum(1 for n in before.nodes if n.status == "ok")
        sent = len(calls(server))
        resumed = cli("resume", run_id[:6], db=db)
        assert resumed.returncode == 0, resumed.stderr
        assert len(calls(server)) - sent == 3 + 1 + 3 + 1 + 1 - finished
    assert f"{finished} finished call(s) kept" in resumed.stderr
    after = Store(db).get_trace(run_id)
    assert after.status == "completed" and after.final_answer == "42"
    again = cli("resume", run_id, db=db)
    assert again.returncode == 1 and "already completed" in again.stderr
