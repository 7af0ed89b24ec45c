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
from pdr_core.providers.openai import OpenAIProvider
from pdr_core.run.methods import run
from pdr_core.store import Store
from pdr_core.testing import KnownCapabilities
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
    # A short backoff keeps the tests fast; a Retry-After the server sends is still honoured.
    # It knows from the start whether the server honours n, as once the store remembers it:
    # the faults queued here meet the requests of the run, not a probe.
    memory = KnownCapabilities(server.base_url, "fake-model", n=server.support_n)
    settings = {"timeout": 1.0, "max_retries": RETRIES, "retry_backoff": 0.01,
                "memory": memory} | options
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
# provider options). Replies that break after a 200 (malformed, cut, stalled) are retried like
# a 5xx; one that is not the chat protocol at all (a web page) or that the endpoint's filter
# stopped is not: another try would get the same.
FAILURES = [
    pytest.param("429", {"retry_after": 0.1}, 2, "rate_limited", ["HTTP 429", "after 1 retry"],
                 {}, id="429"),
    pytest.param("500", {}, 2, "server", ["HTTP 500", "after 1 retry"], {}, id="500"),
    pytest.param("502", {}, 2, "server", ["HTTP 502", "HTML page"], {}, id="502"),
    pytest.param("reset", {}, 2, "connection", ["connection", "broke"], {}, id="reset"),
    pytest.param("timeout", {"seconds": 5}, 2, "timeout", ["No answer", "within 1 s"], {},
                 id="timeout"),
    pytest.param("malformed", {}, 2, "protocol", ["not valid JSON", "after 1 retry"], {},
                 id="malformed-stream-event"),
    pytest.param("malformed", {}, 2, "protocol", ["not valid JSON", "after 1 retry"],
                 {"stream": False}, id="malformed-json-body"),
    pytest.param("malformed", {"body": "<html>login</html>", "content_type": "text/html"}, 1,
                 "protocol", ["text/html", "base URL"], {}, id="html-instead-of-stream"),
    pytest.param("cut", {}, 2, "connection", ["cut off mid-way", "after 1 retry"], {},
                 id="cut"),
    pytest.param("stall", {"seconds": 5}, 2, "timeout", ["stalled", "after 1 retry"], {},
                 id="stall"),
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


@pytest.mark.parametrize("fault, count, kind", [("500", 2, "server"), ("cut", 2, "connection")])
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
    assert "after 1 retry" in trace.error  # the run failed only once its call ran out of tries
    drafts = [n for n in trace.nodes if n.stage == "draft"]
    assert len(drafts) == 3 and all(n.status == "ok" and n.answer == "52" for n in drafts)
    assert [n.id for n in trace.nodes] == ["r1-draft-0", "r1-draft-1", "r1-draft-2",
                                           "r1-distill-0"]


def test_a_failed_shared_draft_request_costs_only_separate_calls(server, store):
    """The drafts' shared request (n=3) fails on both its tries: the three answers are asked
    for one by one, and the run completes."""
    server.inject("500", 2)
    trace = run_stored(store, RunConfig(method="vote", width=3), provider(server))
    assert trace.status == "completed" and trace.final_answer == "52"
    assert [n.status for n in trace.nodes] == ["ok"] * 3
    assert [(r["body"].get("n", 1), r["status"]) for r in server.chat_requests] == (
        [(3, 500)] * 2 + [(1, 200)] * 3)
    seeds = sorted(r["body"]["seed"] for r in server.chat_requests[2:])
    assert seeds == [0, 1, 2]  # each separate call asks for the choice it replaces


def _event(index: int, content: str | None, finish: str | None = None) -> str:
    delta = {} if content is None else {"content": content}
    chunk = {"id": "c1", "object": "chat.completion.chunk", "model": "fake-model",
             "choices": [{"index": index, "delta": delta, "finish_reason": finish}]}
    return "data: " + json.dumps(chunk) + "\n\n"


def test_a_shared_stream_that_breaks_keeps_its_finished_answers(server, store):
    """A shared stream (n=4) whose choices 0 and 2 finished before a garbled event: those
    two are kept, only choices 1 and 3 are asked for again, each as its own call."""
    body = (_event(0, "So \\boxed{52}.") + _event(2, "Thus \\boxed{52}.") + _event(1, "Hm")
            + _event(0, None, "stop") + _event(2, None, "stop") + "data: {this is not json\n\n")
    server.inject("malformed", body=body, content_type="text/event-stream")
    trace = run_stored(store, RunConfig(method="vote", width=4), provider(server))
    assert trace.status == "completed" and [n.status for n in trace.nodes] == ["ok"] * 4
    assert trace.node("r1-draft-0").text == "So \\boxed{52}."
    assert trace.node("r1-draft-2").text == "Thus \\boxed{52}."
    shared, *separate = server.wait_idle()
    assert shared["body"]["n"] == 4 and shared["fault"] == "malformed"
    assert [(r["body"].get("n", 1), r["body"]["seed"], r["status"]) for r in separate] == [
        (1, 1, 200), (1, 3, 200)]


def test_every_draft_failing_names_each_fault(server, store):
    # the shared request and its retry, then each of the three answers and its retry
    server.inject("500", 2)
    server.inject("429", 2, retry_after=0)
    server.inject("reset", 2)
    server.inject("500", 2)
    config = RunConfig(method="vote", width=3, concurrency=1)
    trace = run_stored(store, config, provider(server))
    assert trace.status == "failed"
    kinds = {n.id: n.error_kind for n in trace.nodes}
    assert kinds == {"r1-draft-0": "rate_limited", "r1-draft-1": "connection",
                     "r1-draft-2": "server"}
    assert "HTTP 429" in trace.node("r1-draft-0").error
    assert all("after 1 retry" in n.error for n in trace.nodes)
    assert trace.error.startswith("round 1 draft: all 3 call(s) failed: Rate limited")


def _complete_runs(rate: float, retries: int, count: int) -> list[Trace]:
    """`count` width-8 depth-3 PDR runs (summaries between rounds: three single calls per
    run) against a server where `rate` of the requests meet a fault drawn from 500, 429,
    connection reset, malformed JSON and a stream cut half-way."""
    config = RunConfig(method="pdr", width=8, depth=3, distill="summary", max_tokens=64,
                       workspace_tokens=64)
    faults = ("500", "429", "reset", "malformed", "cut")
    traces = []
    with OpenAIServer(fail_rate=rate, fail_seed=17, fail_faults=faults,
                      fail_retry_after=0) as server:
        # Backoff doubles from 1 ms: ten retries wait about a second in all.
        prov = provider(server, max_retries=retries, timeout=5.0, retry_backoff=0.001)
        for index in range(count):
            question = f"Run {index}: what is 17 * 3 + 1?"
            traces.append(asyncio.run(run(question, config, prov, reference="52")))
        injected = {r["fault"] for r in server.chat_requests}
    assert set(faults) <= injected  # every kind of fault was met
    return traces


def _check_failures_name_their_fault(traces: list[Trace]) -> None:
    for trace in traces:
        for node in trace.nodes:
            if node.status == "failed":
                assert node.error_kind in {"server", "rate_limited", "connection", "protocol"}
                assert "after" in node.error and "retr" in node.error, node.error
        if trace.status != "completed":
            assert trace.error and "all" in trace.error and "after" in trace.error


@pytest.mark.parametrize("rate, retries, least", [(0.3, 6, 10), (0.6, 10, 8)])
def test_wide_deep_runs_complete_under_random_faults(rate, retries, least):
    """Width-8 depth-3 runs complete under 30% faults 10 of 10, under 60% at least 8 of 10:
    a fault costs one call (a retry, or a separate call for a shared request's missing
    answers), never a run while its calls still have tries left. A run still fails when a
    single call (a summary, the final answer) meets a fault on every try: with 6 retries at
    30% one such call in 4,500 does, with 10 at 60% one in 280, three such calls per run."""
    traces = _complete_runs(rate, retries, 10)
    completed = [t for t in traces if t.status == "completed"]
    assert len(completed) >= least, [t.error for t in traces if t.status != "completed"]
    assert all(t.final_answer == "52" for t in completed)
    _check_failures_name_their_fault(traces)


def test_random_server_errors_a_wide_deep_run_completes_and_says_which_calls_failed(store):
    """30% random 500s (seeded) on a width-8, depth-3 run: SDK retries and surviving branches
    carry it through, and the trace names exactly the calls that failed, and why."""
    config = RunConfig(method="pdr", width_schedule=(8, 8, 1), depth=3,
                       distill="per-sample-topk", k=2, concurrency=1, max_tokens=256)
    # Seed 45 with one retry: two refinements fail twice, two refinements and the final
    # call succeed on their retry (the draw depends on each request's body, not on order).
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
    # the seed was picked so that both rescues happen: some calls fail for good, others
    # succeed on their retry
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
        # It believes n is honoured (a stale memory), so its first request asks for three.
        believes = KnownCapabilities(server.base_url, "fake-model", n=True)
        trace = run_stored(store, RunConfig(method="vote", width=3),
                           provider(server, max_retries=0, memory=believes))
    assert trace.node("r1-draft-0").status == "ok"
    assert trace.status == "completed"
