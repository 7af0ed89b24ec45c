"""Compare and fork comparison on code runs: programs are the same answer when they behave
the same on the tests, not when their text is."""

from __future__ import annotations

import asyncio

from openai_server import OpenAIServer
from test_code_runs import PAIRS, SORTED, WRONG, by_seed, run_code

from pdr_core.config import RunConfig
from pdr_core.providers.openai import OpenAIProvider
from pdr_core.render.compare import compare_runs, final_node
from pdr_core.run.forks import fork_comparison
from pdr_core.run.methods import fork

VOTE = RunConfig(method="vote", width=3)
PASSES = "program passing 7 of 7 tests"
FAILS = "program passing 4 of 7 tests"


def test_compare_groups_programs_by_behaviour():
    a, _ = run_code(VOTE, by_seed({0: SORTED, 1: WRONG, 2: PAIRS}))
    b, _ = run_code(VOTE, by_seed({0: PAIRS, 1: WRONG, 2: SORTED}))
    result = compare_runs(a, b)
    rows = {row.a.id: row for row in result.rows}
    assert rows["r1-draft-0"].a.answer != rows["r1-draft-0"].b.answer  # written apart
    assert rows["r1-draft-0"].same_answer is True  # behave the same
    assert rows["r1-draft-1"].same_answer is True
    assert rows["r1-draft-0"].a.label == PASSES and rows["r1-draft-1"].b.label == FAILS
    [stage] = result.stages
    assert stage.a.answers == stage.b.answers == ((PASSES, 2), (FAILS, 1))
    assert final_node(b).id == "r1-draft-0"


def test_a_fork_with_a_rewritten_but_equal_program_keeps_its_answer():
    original, _ = run_code(VOTE, by_seed({0: SORTED, 1: WRONG, 2: PAIRS}))
    with OpenAIServer(answer=by_seed({0: PAIRS, 1: WRONG, 2: PAIRS})) as server:
        provider = OpenAIProvider(server.base_url, "sk-x", "fake-model", max_retries=0)
        forked = asyncio.run(fork(original, "r1-draft-0", provider, execute=True))
    assert forked.final_answer != original.final_answer
    comparison = fork_comparison(original, forked)
    assert comparison.changed == ["r1-draft-0"]
    assert comparison.answer_changed is False
    assert [r.original for r in comparison.rounds] == [{PASSES: 2, FAILS: 1}]
    assert [r.fork for r in comparison.rounds] == [{PASSES: 2, FAILS: 1}]
