"""rsa, tournament, select and adaptive stops from the command line, over HTTP; and
resume and fork for the new methods."""

import asyncio

from conftest import QUESTION, run_fake
from openai_server import OpenAIServer
from test_cli import cli

from pdr_core.config import RunConfig
from pdr_core.events import RunFinished
from pdr_core.fold import fold
from pdr_core.run.methods import fork, resume
from pdr_core.testing import FakeProvider


def _fields(result):
    return dict(line.split(": ", 1) for line in result.stdout.strip().splitlines())


def test_rsa_tournament_and_select_run_from_the_cli(tmp_path):
    db = tmp_path / "runs.sqlite"
    with OpenAIServer() as server:
        endpoint = ("--base-url", server.base_url, "--model", "fake-model")
        rsa = cli("run", QUESTION, "--method", "rsa", "--population", "8", "--subset", "3",
                  "--steps", "2", *endpoint, db=db)
        assert rsa.returncode == 0, rsa.stderr
        assert _fields(rsa)["calls"] == "24"
        # every call but the one-token probe of `n` a new endpoint gets
        calls = [r for r in server.chat_requests if r["body"].get("max_tokens") != 1]
        assert sum(r["body"].get("n", 1) for r in calls) == 24
        tour = cli("run", QUESTION, "--method", "tournament", "--width", "4", "--group", "2",
                   "--votes", "3", *endpoint, db=db)
        assert tour.returncode == 0, tour.stderr
        assert _fields(tour)["calls"] == str(4 + 6 + 3)
        assert _fields(tour)["selection"].startswith("tournament: r1-draft-0 won")
        select = cli("run", QUESTION, "--method", "select", "--width", "3", *endpoint, db=db)
        assert select.returncode == 0 and _fields(select)["calls"] == "4"
        assert _fields(select)["selection"].startswith("generative selection fell back")
        stop = cli("run", QUESTION, "--depth", "4", "--stop-when-agree", "0.5", "--distill",
                   "topk", *endpoint, db=db)
        assert stop.returncode == 0 and _fields(stop)["stopped"] == "converged"
        assert _fields(stop)["calls"] == "4"


def test_bad_method_settings_are_refused_before_any_call(tmp_path):
    with OpenAIServer() as server:
        endpoint = ("--base-url", server.base_url, "--model", "fake-model")
        for args, message in [
            (("--stop-when-agree", "1.5"), "stop_when_agree=1.5 is invalid"),
            (("--method", "vote", "--stop-when-agree", "0.8"), "only pdr, sr, rsa"),
            (("--method", "rsa", "--width", "2", "--k", "3"), "k=3 is invalid"),
            (("--method", "tournament", "--group", "1"), "group=1 is invalid"),
            (("--final-select", "aggregate"), "only rsa ends with an aggregation"),
        ]:
            result = cli("run", QUESTION, *args, *endpoint, db=tmp_path / "runs.sqlite")
            assert result.returncode == 2 and message in result.stderr, result.stderr
        assert server.chat_requests == []


def test_new_methods_resume_without_repeating_finished_calls():
    for config in (RunConfig(method="rsa", width=4, k=2, depth=2),
                   RunConfig(method="tournament", width=4, group=2, votes=2),
                   RunConfig(method="select", width=3)):
        events = []
        done = run_fake(config, FakeProvider(), events.append)
        cut = [e for e in events if getattr(e, "node_id", "r1-").startswith("r1-")
               and not isinstance(e, RunFinished)]
        partial = fold(cut)
        partial.status = "interrupted"
        again = FakeProvider()
        resumed = asyncio.run(resume(partial, cut, again))
        assert resumed.status == "completed"
        assert [(n.id, n.parent_ids, n.answer) for n in resumed.nodes] == [
            (n.id, n.parent_ids, n.answer) for n in done.nodes]
        assert resumed.final_selection == done.final_selection
        assert len(again.calls) == config.calls - config.schedule[0]


def test_forking_an_rsa_run_recalls_only_what_depended_on_the_node():
    config = RunConfig(method="rsa", width=4, k=2, depth=2)
    parent = run_fake(config)
    child = asyncio.run(fork(parent, "r2-aggregate-1", FakeProvider()))
    called = {n.id for n in child.nodes if not n.reused}
    depends = {"r2-aggregate-1"} | {n.id for n in parent.nodes
                                    if "r2-aggregate-1" in n.parent_ids}
    assert called == depends and child.status == "completed"
