import pytest
from conftest import QUESTION, run_fake

from pdr_core.config import RunConfig
from pdr_core.run.preview import known_price, preview


@pytest.mark.parametrize(
    "config",
    [
        RunConfig(method="pdr", width=4, depth=3, max_tokens=64, workspace_tokens=32),
        RunConfig(method="pdr", depth=3, width_schedule=(6, 3, 1), distill="topk", k=2,
                  max_tokens=64),
        RunConfig(method="sr", depth=3, max_tokens=64, workspace_tokens=32),
        RunConfig(method="single", max_tokens=64),
        RunConfig(method="vote", width=5, max_tokens=64),
    ],
    ids=lambda c: c.method + "-" + c.distill,
)
def test_preview_bounds_the_real_run(config):
    estimate = preview(config, QUESTION)
    trace = run_fake(config)
    assert estimate.calls == config.calls == trace.budget.calls
    assert trace.budget.b_seq <= estimate.worst_b_seq
    assert trace.budget.b_total <= estimate.worst_b_total
    assert estimate.worst_b_seq <= estimate.worst_b_total
    assert estimate.cost_usd is None


def test_cost_and_total_budget_cap():
    config = RunConfig(method="vote", width=4, max_tokens=1000)
    full = preview(config, QUESTION, price=(1.0, 2.0))
    # 4 calls of 1000 output tokens at $2 per million, plus the prompts at $1 per million
    assert full.worst_completion_tokens == 4000
    assert full.cost_usd == pytest.approx(
        (full.worst_prompt_tokens * 1.0 + 4000 * 2.0) / 1e6)
    capped = preview(RunConfig(method="vote", width=4, max_tokens=1000, total_budget=2000),
                     QUESTION, price=(1.0, 2.0))
    assert capped.worst_b_total == 2000
    assert capped.cost_usd < full.cost_usd


def test_known_prices():
    assert known_price("gpt-4o-mini") == (0.15, 0.60)
    assert known_price("gpt-4o-mini-2024-07-18") == (0.15, 0.60)
    assert known_price("gpt-4o") == (2.50, 10.00)
    assert known_price("qwen2.5:7b") is None
