"""Property-based fuzzing of the code that reads untrusted input: trace import and answer
extraction. Bounded and derandomized, so it runs in seconds and the same way every time;
PDR_FUZZ_EXAMPLES=5000 fuzzes longer, with fresh random examples each run.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pdr_core.answer_forms import normalize_answer
from pdr_core.answers import answers_equal, is_correct, majority_vote
from pdr_core.config import RunConfig
from pdr_core.extraction import extract_answer
from pdr_core.run.methods import run
from pdr_core.store import Store
from pdr_core.testing import FakeProvider
from pdr_core.trace import TraceError
from pdr_core.trace_import import trace_from_dict, trace_from_json

# Keep hypothesis's own files (example database, caches) out of the working tree.
hypothesis.configuration.set_hypothesis_home_dir(
    str(Path(tempfile.gettempdir()) / "pdr-inspector-hypothesis"))

_LONG = os.environ.get("PDR_FUZZ_EXAMPLES")
FUZZ = settings(
    max_examples=int(_LONG or 150),
    deadline=None,
    derandomize=not _LONG,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Any character at all, lone surrogates included: JSON can carry them as \ud800 escapes.
ANY_CHAR = st.characters(codec=None, exclude_categories=())
TRACE_KEYS = ["format", "id", "created_at", "question", "reference_answer", "config", "status",
              "nodes", "final_answer", "correct", "budget", "error", "stop_reason",
              "finished_at", "stage", "round", "branch", "parent_ids", "messages", "text",
              "answer", "usage", "started_at", "role", "content", "prompt_tokens",
              "completion_tokens", "reasoning_tokens", "method", "model", "width_schedule",
              "call", "reasoning", "finish_reason", "error_kind", "prompts"]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(ANY_CHAR, max_size=12)
    | st.sampled_from(["pdr-trace/1", "pdr-trace/2", "ok", "failed", "running", "completed",
                       "draft", "distill", "refine", "final", "r1-draft-0", "user", ""])
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(TRACE_KEYS) | st.text(max_size=6), children, max_size=6),
    max_leaves=25,
)
# Values of the wrong kind that a damaged or hand-edited trace may hold anywhere.
ODD_VALUES = st.sampled_from(
    [None, True, 0, -1, 10**30, 1.5, "", "\ud800", "a\udfff", [], {}, [[]], ["\ud800"],
     [{"a": 1}], {"a": {}}, "r1-draft-0"]
).map(copy.deepcopy)  # a fresh copy each time: later mutations may change it


def _valid_trace() -> dict[str, Any]:
    """A real trace, with failed, extractive and summary nodes, as exported."""

    def fail(messages, seed):
        return "planted failure" if seed == 1 else None

    traces = [
        asyncio.run(run("What is 17 * 3 + 1?", RunConfig(method="pdr", width=3, depth=2),
                        FakeProvider(fail=fail), reference="52")),
        asyncio.run(run("What is 6 * 7?", RunConfig(method="pdr", width=2, depth=2,
                                                    distill="topk", k=1), FakeProvider())),
    ]
    return [json.loads(t.to_json()) for t in traces]


VALID = _valid_trace()
STORE = Store(Path(tempfile.mkdtemp(prefix="pdr-fuzz-")) / "runs.sqlite")


def _import(text: str | bytes) -> None:
    """What `python -m pdr_core import` does: parse, validate, store, and read back."""
    try:
        trace = trace_from_json(text)
    except TraceError as exc:
        assert str(exc), "a TraceError must say what is wrong"
        return
    run_id = STORE.import_trace(trace)
    stored = STORE.get_trace(run_id)
    assert [n.id for n in stored.nodes] == [n.id for n in trace.nodes]
    assert stored.question == trace.question


def _shaped(keys: dict[str, Any], values) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with the given keys, each holding a well-typed value or any value at all."""
    return st.fixed_dictionaries(
        {key: (good if isinstance(good, st.SearchStrategy)
               else st.just(good).map(copy.deepcopy)) | values
         for key, good in keys.items()}
    )


NODE_SHAPE = _shaped(
    {"id": st.sampled_from(["a", "b", "r1-draft-0"]), "stage": "draft", "round": 1, "branch": 0,
     "parent_ids": st.lists(st.sampled_from(["a", "b"]), max_size=2),
     "messages": [{"role": "user", "content": "q"}], "text": "t", "answer": None,
     "correct": None, "usage": {"prompt_tokens": 1, "completion_tokens": 2},
     "started_at": "2024-01-01T00:00:00", "finished_at": None,
     "status": st.sampled_from(["ok", "failed", "running"]), "error": None},
    ODD_VALUES,
)
TRACE_SHAPE = _shaped(
    {"format": "pdr-trace/1", "id": "x", "created_at": "2024-01-01T00:00:00",
     "question": "q", "reference_answer": None,
     "config": st.dictionaries(st.sampled_from(TRACE_KEYS), ODD_VALUES, max_size=3),
     "status": st.sampled_from(["completed", "failed", "running"]),
     "nodes": st.lists(NODE_SHAPE, max_size=3), "final_answer": None, "correct": None,
     "budget": {}},
    ODD_VALUES,
)


@FUZZ
@given(JSON_VALUES | TRACE_SHAPE)
def test_import_of_any_json_raises_only_trace_error(value):
    _import(json.dumps(value))


@FUZZ
@given(st.binary(max_size=200) | st.text(ANY_CHAR, max_size=200))
def test_import_of_any_bytes_or_text_raises_only_trace_error(raw):
    try:
        trace_from_json(raw)
    except TraceError:
        pass


@st.composite
def mutated_traces(draw) -> dict[str, Any]:
    """A valid trace with a few values replaced, keys removed or items added, anywhere."""
    data = json.loads(json.dumps(draw(st.sampled_from(VALID))))
    for _ in range(draw(st.integers(1, 2))):
        container: Any = data
        # Walk down a random path; stop at any level.
        while True:
            keys = list(container) if isinstance(container, dict) else range(len(container))
            if not keys:
                break
            key = draw(st.sampled_from(list(keys)))
            child = container[key]
            if isinstance(child, (dict, list)) and child and draw(st.booleans()):
                container = child
                continue
            action = draw(st.sampled_from(["replace", "delete", "add", "odd", "odd", "odd"]))
            if action == "replace":
                container[key] = draw(JSON_VALUES)
            elif action == "delete":
                container.pop(key)
            elif action == "add" and isinstance(container, dict):
                container[draw(st.sampled_from(TRACE_KEYS))] = draw(JSON_VALUES)
            elif action == "add":
                container.insert(key, draw(JSON_VALUES))
            else:
                container[key] = draw(ODD_VALUES)
            break
    return data


@FUZZ
@given(mutated_traces())
def test_import_of_a_mutated_trace_raises_only_trace_error_and_stores_what_it_accepts(data):
    _import(json.dumps(data))
    try:
        trace_from_dict(data)
    except TraceError:
        pass


def test_the_fuzzer_reaches_both_outcomes():
    """A fuzzer that only ever produced refusals (or only acceptances) would prove nothing."""
    outcomes = set()

    @settings(max_examples=60, deadline=None, derandomize=True, database=None)
    @given(mutated_traces())
    def probe(data):
        try:
            trace_from_dict(data)
            outcomes.add("accepted")
        except TraceError:
            outcomes.add("refused")

    probe()
    assert outcomes == {"accepted", "refused"}


def test_import_validation_refuses_what_the_store_cannot_hold():
    """Values the fuzzer found: each used to escape as a raw crash from the store or fold."""
    cases = {
        "lone surrogate": lambda d: d.__setitem__("question", "\ud800"),
        "token count past the store's integers": lambda d: d["nodes"][0]["usage"].__setitem__(
            "prompt_tokens", 10**30),
        "negative token count": lambda d: d["nodes"][0]["usage"].__setitem__(
            "completion_tokens", -1),
        "parent id that is a list": lambda d: d["nodes"][1].__setitem__("parent_ids", [[0]]),
        "config method that is an object": lambda d: d["config"].__setitem__("method", {}),
        "config schedule of words": lambda d: d["config"].__setitem__("width_schedule", ["a"]),
        "run error that is a list": lambda d: d.__setitem__("error", [1]),
        "node reasoning that is a list": lambda d: d["nodes"][0].__setitem__("reasoning", [1]),
        "empty run id": lambda d: d.__setitem__("id", ""),
    }
    for name, mutate in cases.items():
        data = json.loads(json.dumps(VALID[0]))
        mutate(data)
        try:
            trace_from_json(json.dumps(data))
        except TraceError as exc:
            assert str(exc), name
        else:
            raise AssertionError(f"{name}: accepted")
    huge_number = '{"format": "pdr-trace/1", "round": ' + "7" * 5000 + "}"
    with pytest.raises(TraceError, match="digits"):
        trace_from_json(huge_number)
    deep = '{"format": "pdr-trace/1", "config": ' + "[" * 100_000 + "]" * 100_000 + "}"
    try:
        trace_from_json(deep)
    except TraceError as exc:
        assert "nested" in str(exc)
    else:
        raise AssertionError("a 100,000-deep document was accepted")


# ----- answers ------------------------------------------------------------------------------

ANSWER_TOKENS = ["\\boxed{", "\\fbox{", "{", "}", "\\", "$", "$$", "\\(", "\\)", "\\[", "\\]",
                 "Answer:", "**Answer:**", "final answer is", "Final Answer:", "\n", " ", "\t",
                 "**", ".", ",", "1", "42", "-3", "0.5", "1,000", "\\frac{1}{2}", "\\frac12",
                 "/", "x =", "%", "\\%", "^\\circ", "\\text{", "\\left(", "\\right)", "(A)",
                 "\u2212", "\u202e", "\x00", "\ud800", "1" * 70, "=", "\\sqrt2", "\\dfrac"]
ANSWER_TEXT = (
    st.lists(st.sampled_from(ANSWER_TOKENS) | st.text(ANY_CHAR, max_size=4), max_size=40)
    .map("".join)
    | st.text(ANY_CHAR, max_size=300)
)


@FUZZ
@given(ANSWER_TEXT)
def test_extract_answer_never_raises_and_returns_part_of_the_text(text):
    answer = extract_answer(text)
    assert answer is None or (answer and answer in text)


@FUZZ
@given(ANSWER_TEXT, ANSWER_TEXT)
def test_normalize_and_compare_never_raise_and_are_consistent(a, b):
    na = normalize_answer(a)
    assert na is None or (isinstance(na, str) and na)
    assert answers_equal(a, b) == answers_equal(b, a)
    assert answers_equal(a, a) == (na is not None)
    assert is_correct(a, None) is None
    assert is_correct(None, b) is False
    assert is_correct(a, b) == answers_equal(a, b)


@FUZZ
@given(st.lists(st.none() | ANSWER_TEXT, max_size=8))
def test_majority_vote_never_raises_and_counts_its_winner(answers):
    winner, count = majority_vote(answers)
    if all(normalize_answer(a) is None for a in answers):
        assert (winner, count) == (None, 0)
    else:
        assert winner in answers and count >= 1
        assert count == sum(answers_equal(winner, a) for a in answers)
        assert count >= max(sum(answers_equal(x, a) for a in answers) for x in answers)
