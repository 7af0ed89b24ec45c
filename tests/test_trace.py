"""pdr-trace/1 export and import."""

import json

import pytest
from conftest import run_fake

from pdr_core.config import RunConfig
from pdr_core.fold import fold, trace_to_events
from pdr_core.testing import FakeProvider
from pdr_core.trace import FORMAT, TraceError
from pdr_core.trace_import import trace_from_json

UNICODE_QUESTION = "Quel est 6 × 7 ? What is 6 * 7? 答え — ∑ 🙂"

CONFIGS = [
    RunConfig(method="pdr", width=3, depth=3, distill="summary"),
    RunConfig(method="pdr", width=3, depth=2, distill="per-sample-topk", k=2),
    RunConfig(method="sr", depth=2),
    RunConfig(method="single"),
    RunConfig(method="vote", width=3),
]


def failing_provider():
    return FakeProvider(fail=lambda messages, seed: "boom «ünïcode»" if seed == 1 else None)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.method}-{c.distill}")
def test_export_then_import_gives_an_equal_trace(config):
    trace = run_fake(config, failing_provider(), question=UNICODE_QUESTION, reference="42")
    text = trace.to_json()
    data = json.loads(text)
    assert data["format"] == FORMAT
    for key in ("id", "created_at", "question", "reference_answer", "config", "status",
                "nodes", "final_answer", "correct", "budget"):
        assert key in data
    imported = trace_from_json(text)
    assert imported.to_dict() == trace.to_dict()
    assert fold(trace_to_events(imported)).to_dict() == trace.to_dict()


def test_trace_keeps_failed_nodes_and_usage_keys():
    trace = run_fake(CONFIGS[0], failing_provider())
    data = trace.to_dict()
    statuses = {n["id"]: n["status"] for n in data["nodes"]}
    assert statuses["r1-draft-1"] == "failed"
    node = next(n for n in data["nodes"] if n["id"] == "r1-draft-1")
    assert node["error"] == "boom «ünïcode»"
    for n in data["nodes"]:
        assert set(n["usage"]) >= {"prompt_tokens", "completion_tokens"}
        assert n["stage"] in ("draft", "distill", "refine", "final")


def _valid():
    return run_fake(RunConfig(method="vote", width=2)).to_dict()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(format="other/1"), "not a PDR trace"),
        (lambda d: d.update(format="pdr-trace/2"), "version 'pdr-trace/2' is not supported"),
        (lambda d: d.pop("nodes"), "missing the key 'nodes'"),
        (lambda d: d.pop("budget"), "missing the key 'budget'"),
        (lambda d: d["nodes"][0].pop("messages"), "node 0 is missing the key 'messages'"),
        (lambda d: d.update(status="done"), "'status' is 'done'"),
        (lambda d: d["nodes"][1].update(stage="<b>Vote</b>"), "node 1: 'stage' is '<b>Vote</b>'"),
        (lambda d: d["nodes"][0].update(round="1"), "node 0: 'round' must be int"),
        (lambda d: d["nodes"][0]["usage"].update(prompt_tokens=None), "usage.prompt_tokens"),
        (lambda d: d["nodes"][1].update(parent_ids=["ghost"]), "do not precede"),
        (lambda d: d["nodes"][1].update(id=d["nodes"][0]["id"]), "duplicate node id"),
    ],
)
def test_import_refuses_bad_traces_with_a_clear_message(mutate, message):
    data = _valid()
    mutate(data)
    with pytest.raises(TraceError, match=message.replace("(", r"\(").replace(")", r"\)")):
        trace_from_json(json.dumps(data))


def test_import_refuses_non_json_and_non_objects():
    with pytest.raises(TraceError, match="not valid JSON"):
        trace_from_json("{not json")
    with pytest.raises(TraceError, match="JSON object"):
        trace_from_json("[1, 2]")


def test_a_trace_has_its_settings_typed_and_an_odd_import_has_none():
    config = RunConfig(method="pdr", width_schedule=(3, 2, 1), depth=3, distill="topk", k=2)
    trace = trace_from_json(run_fake(config).to_json())
    assert trace.run_config == config and trace.run_config.schedule == (3, 2, 1)
    assert trace.run_config is trace.run_config  # worked out once
    assert trace.known_config == config
    # an imported trace whose settings this version cannot run: drawn, never run
    data = json.loads(trace.to_json())
    data["config"]["depth"] = 99
    odd = trace_from_json(json.dumps(data))
    assert odd.known_config is None
    with pytest.raises(ValueError, match="depth"):
        _ = odd.run_config
