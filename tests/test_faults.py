"""Faults at the endpoint, through the real OpenAIProvider and `openai` client against the
loopback OpenAI-protocol server: each failure lands on the node whose call it hit, with its
cause; every other node, and everything already finished, is kept (in the store too).
"""

from __future__ import annotations

import asyncio
import json

import pytest
from openai_server import OpenAIServer

from pdr_core.config import RunConfig
from pdr_core.methods import run
from pdr_core.providers.openai_compat import OpenAIProvider
from pdr_core.store import Store
from pdr_core.trace import Node, Trace

QUESTION = "What is 17 * 3 + 1?"
RETRIES = 1
# Round 2 of this schedule makes three calls with distinct prompts (per-sample top-k gives
# each its own workspace), and concurrency 1 makes them one after another: request 1 is the
# round-1 drafts (one request with n=3), request 2 (and its retries) is r2-refine-0.
CONFIG = RunConfig(method="pdr", width_schedule=(3, 3, 1), depth=3, distill="per-sample-topk",
                   k=2, concurrency=1, max_tokens=256)
# A harmless fault (the endpoint reports no usage): lets one request through untouched.
PASS = "no_usage"


@pytest.fixture
def server():
    with OpenAIServer() as srv:
        yield srv
        assert srv.pending_faults == 0, "a fault was injected but never reached"


def provider(server: OpenAIServer, **options) -> OpenAIProvider:
    settings = {"timeout": 1.0, "max_retries": RETRIES} | options
    return OpenAIProvider(server.base_url, "sk-test", "fake-model", **settings)


def run_stored(store: Store, config: RunConfig, prov: OpenAIProvider) -> Trace:
    trace = asyncio.run(run(QUESTION, config, prov, store.writer(), reference="52"))
    # Nothing the run produced is only in memory: the store folds to the same trace.
    assert store.get_trace(trace.id).to_dict() == trace.to_dict()
    [summary] = store.list_runs()
    assert (summary.status, summary.calls) == (trace.status, trace.budget.calls)
    return trace


def seed_of(config: RunConfig, node: Node) -> int:
    return config.seed + 1000 * (node.round - 1) + node.branch


def requests_per_node(trace: Trace, config: RunConfig, server: OpenAIServer) -> dict:
    """Each call node's requests, matched by the prompt and seed it sent; a shared request
    (n choices, seeds seed..seed+n-1) counts for each of its nodes. Every request must match."""
    found: dict[str, list[dict]] = {n.id: [] for n in trace.nodes if n.call}
    for request in server.chat_requests:
        body = request["body"]
        seeds = range(body["seed"], body["seed"] + body.get("n", 1))
        nodes = [n for n in trace.nodes if n.call and n.messages == body["messages"]
                 and seed_of(config, n) in seeds]
        assert nodes, f"a request matches no node: {json.dumps(body)[:300]}"
        for node in nodes:
            found[node.id].append(request)
    return found


# (fault, its options, requests it takes to fail a call with 1 retry, kind, words in the error,
# provider options). Streams that break after a 200 are not retried by the SDK.
FAILURES = [
    pytest.param("429", {"retry_after": 0.1}, 2, "rate_limited", ["HTTP 429", "after 1 retry"],
                 {}, id="429"),
    pytest.param("500", {}, 2, "server", ["HTTP 500", "after 1 retry"], {}, id="500"),
    pytest.param("502", {}, 2, "server", ["HTTP 502", "HTML page"], {}, id="502"),
    pytest.param("reset", {}, 2, "connection", ["connection", "broke"], {}, id="reset"),
    pytest.param("timeout", {"seconds": 5}, 2, "timeout", ["No answer", "within 1 s"], {},
                 id="timeout"),
    pytest.param("malformed", {}, 1, "protocol", ["not valid JSON"], {},
                 id="malformed-stream-event"),
    pytest.param("malformed", {}, 1, "protocol", ["not valid JSON"], {"stream": False},
                 id="malformed-json-body"),
    pytest.param("malformed", {"body": "<html>login</html>", "content_type": "text/html"}, 1,
                 "protocol", ["text/html", "base URL"], {}, id="html-instead-of-stream"),
    pytest.param("cut", {}, 1, "connection", ["cut off mid-way"], {}, id="cut"),
    pytest.param("stall", {"seconds": 5}, 1, "timeout", ["stalled"], {}, id="stall"),
    pytest.param("content_filter", {}, 1, "content_filter", ["content filter"], {},
                 id="content_filter"),
]


@pytest.mark.parametrize("fault, options, count, kind, words, provider_options", FAILURES)
def test_a_failed_call_fails_its_own_node_and_the_run_goes_on(
    server, store, fault, options, count, kind, words, provider_options
):
    server.inject(PASS)
    server.inject(fault, count, **options)
    trace = run_stored(store, CONFIG, provider(server, **provider_options))

    assert trace.status == "completed" and trace.final_answer == "52", trace.error
    [failed] = [n for n in trace.nodes if n.status != "ok"]
    assert failed.id == "r2-refine-0" and failed.status == "failed"
    assert failed.error_kind == kind
    for word in words:
        assert word in failed.error, failed.error
    assert "Traceback" not in failed.error and "sk-test" not in failed.error
    # every other node finished, with real output
    others = [n for n in trace.nodes if n is not failed]
    assert len(others) == 3 + 3 + 2 + 1 + 1  # drafts, workspaces, refinements, workspace, final
    assert all(n.status == "ok" and n.text for n in others)
    # the failed call is no one's evidence, and its error never reaches a prompt
    assert all(failed.id not in n.parent_ids for n in trace.nodes)
    assert not any(failed.error in m["content"] for n in trace.nodes for m in n.messages)
    # the server saw exactly those attempts for that node, each with the fault
    sent = requests_per_node(trace, CONFIG, server)
    assert [r["fault"] for r in sent["r2-refine-0"]] == [fault] * count
    assert all(len(sent[n.id]) == 1 for n in others if n.call)


@pytest.mark.parametrize("fault, finish, text_check", [
    ("empty", "stop", lambda text: text == ""),
    ("length", "length", lambda text: 0 < len(text) and "\\boxed" not in text),
])
def test_an_empty_or_truncated_answer_is_kept_as_such(server, store, fault, finish, text_check):
    server.inject(PASS)
    server.inject(fault)
    trace = run_stored(store, CONFIG, provider(server))
    assert trace.status == "completed" and trace.final_answer == "52"
    node = trace.node("r2-refine-0")
    assert node.status == "ok" and node.finish_reason == finish and node.answer is None
    assert text_check(node.text)
    assert all(n.status == "ok" for n in trace.nodes)


def test_429_with_retry_after_is_waited_for_then_the_call_succeeds(server, store):
    server.inject(PASS)
    server.inject("429", retry_after=0.4)
    trace = run_stored(store, CONFIG, provider(server))
    assert trace.status == "completed" and trace.final_answer == "52"
    assert all(n.status == "ok" for n in trace.nodes)
    first, second = requests_per_node(trace, CONFIG, server)["r2-refine-0"]
    assert (first["status"], second["status"]) == (429, 200)
    assert second["start"] - first["end"] >= 0.35  # the SDK honoured Retry-After


@pytest.mark.parametrize("fault, count, kind", [("500", 2, "server"), ("cut", 1, "connection")])
def test_a_failed_summary_fails_the_run_on_that_node_and_keeps_the_drafts(
    server, store, fault, count, kind
):
    config = RunConfig(method="pdr", width=3, depth=2, distill="summary", max_tokens=256)
    server.inject(PASS)
    server.inject(fault, count)
    trace = run_stored(store, config, provider(server))

    assert trace.status == "failed"
    summary = trace.node("r1-distill-0")
    assert summary.status == "failed" and summary.error_kind == kind
    assert trace.error == f"round 1 distill: all 1 call(s) failed: {summary.error}"
    drafts = [n for n in trace.nodes if n.stage == "draft"]
    assert len(drafts) == 3 and all(n.status == "ok" and n.answer == "52" for n in drafts)
    assert [n.id for n in trace.nodes] == ["r1-draft-0", "r1-draft-1", "r1-draft-2",
                                           "r1-distill-0"]


def test_a_failed_shared_draft_request_fails_each_of_its_drafts_with_the_cause(server, store):
    server.inject("500", 2)
    trace = run_stored(store, RunConfig(method="vote", width=3), provider(server))
    assert trace.status == "failed"
    assert [n.status for n in trace.nodes] == ["failed"] * 3
    assert {n.error_kind for n in trace.nodes} == {"server"}
    assert all("HTTP 500" in n.error for n in trace.nodes)
    assert trace.error.startswith("round 1 draft: all 3 call(s) failed: Server error")
    # one request for the three drafts (n=3), sent twice
    assert [(r["body"]["n"], r["status"]) for r in server.chat_requests] == [(3, 500)] * 2


def test_random_server_errors_a_wide_deep_run_completes_and_says_which_calls_failed(store):
    """30% random 500s (seeded) on a width-8, depth-3 run: SDK retries and surviving branches
    carry it through, and the trace names exactly the calls that failed, and why."""
    config = RunConfig(method="pdr", width_schedule=(8, 8, 1), depth=3,
                       distill="per-sample-topk", k=2, concurrency=1, max_tokens=256)
    # Seed 45 with one retry, one call at a time: the drafts' shared request and the final
    # call each succeed on their retry, two refinements fail twice, two succeed on retry.
    with OpenAIServer(fail_rate=0.3, fail_seed=45) as server:
        trace = run_stored(store, config, provider(server))
        sent = requests_per_node(trace, config, server)
        requests = server.chat_requests

    assert trace.status == "completed" and trace.final_answer == "52"
    calls = [n for n in trace.nodes if n.call]
    assert len(calls) == 8 + 8 + 1
    for node in calls:
        statuses = [r["status"] for r in sent[node.id]]
        if node.status == "failed":
            # failed exactly when every attempt got a 500, and it says so
            assert statuses == [500] * (RETRIES + 1), (node.id, statuses)
            assert node.error_kind == "server" and "HTTP 500" in node.error
            assert "after 1 retry" in node.error
        else:
            assert node.status == "ok" and statuses[-1] == 200, (node.id, statuses)
            assert set(statuses[:-1]) <= {500}
    # the seed was picked so that both rescues happen: some calls fail for good (two
    # refinements, as the engine orders requests today), others succeed on their retry
    failed = [n for n in calls if n.status == "failed"]
    retried = [n for n in calls if n.status == "ok" and len(sent[n.id]) > 1]
    assert failed and retried
    # every request is accounted for: the drafts' shared request(s), then one call per node
    drafts = [n for n in calls if n.stage == "draft"]
    assert all(sent[n.id] == sent[drafts[0].id] for n in drafts)
    assert len(requests) == len(sent[drafts[0].id]) + sum(
        len(sent[n.id]) for n in calls if n.stage != "draft")
    survivors = [n for n in trace.nodes if n.stage == "refine" and n.status == "ok"]
    assert survivors
    # the final call drew only on refinements that finished
    final_sources = {p for n in trace.nodes if n.stage == "distill" and n.round == 2
                     for p in n.parent_ids}
    assert final_sources and final_sources <= {n.id for n in survivors}


# ----- endpoints that ignore `n` (llama.cpp, Ollama): drafts go out as separate calls ------


def test_an_endpoint_that_ignores_n_loses_only_the_draft_whose_call_failed(store):
    with OpenAIServer(support_n=False) as server:
        prov = provider(server, max_retries=0)
        warm = asyncio.run(run(QUESTION, RunConfig(method="vote", width=2), prov))
        assert warm.status == "completed" and prov.supports_n is False
        server.clear()
        server.inject("500")
        trace = run_stored(store, RunConfig(method="vote", width=3), prov)
    assert sorted(n.status for n in trace.nodes) == ["failed", "ok", "ok"]
    assert trace.status == "completed" and trace.final_answer == "52"


def test_the_first_request_to_an_endpoint_that_ignores_n_keeps_its_answered_choice(store):
    with OpenAIServer(support_n=False) as server:
        server.inject(PASS)  # the n=3 request: answered with one choice
        server.inject("500")  # the next call
        trace = run_stored(store, RunConfig(method="vote", width=3), provider(server,
                                                                                max_retries=0))
    assert trace.node("r1-draft-0").status == "ok"
    assert trace.status == "completed"
