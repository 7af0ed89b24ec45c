import pytest

from pdr_core.config import ConfigError, RunConfig, parse_schedule
from pdr_core.prompts import PromptSet, TemplateError


@pytest.mark.parametrize(
    ("kwargs", "field", "fragment"),
    [
        ({"width": 0}, "width", "from 1 to"),
        ({"depth": 0}, "depth", "from 1 to"),
        ({"k": 0}, "k", "from 1 to"),
        ({"workspace_tokens": 15}, "workspace_tokens", "from 16"),
        ({"max_tokens": 0}, "max_tokens", "from 1"),
        ({"method": "beam"}, "method", "pdr, sr, single, vote"),
        ({"distill": "median"}, "distill", "summary, topk"),
        ({"depth": 3, "width_schedule": (8, 1)}, "width_schedule", "depth is 3"),
        ({"depth": 2, "width_schedule": (0, 1)}, "width_schedule", "from 1"),
        ({"distill": "topk", "width": 2, "k": 3}, "k", "from 1 to 2"),
        ({"distill": "random-k", "depth": 3, "width_schedule": (8, 2, 1), "k": 3}, "k",
         "from 1 to 2"),
        ({"temperature": 2.5}, "temperature", "0 to 2"),
        ({"total_budget": 0}, "total_budget", "from 1"),
        ({"concurrency": 0}, "concurrency", "from 1"),
        ({"method": "vote", "width_schedule": (4,), "depth": 1}, "width_schedule", "only"),
        ({"width": 2.5}, "width", "whole number"),
        ({"seed": "x"}, "seed", "whole number"),
    ],
)
def test_invalid_values_name_field_value_and_range(kwargs, field, fragment):
    with pytest.raises(ConfigError) as info:
        RunConfig(**kwargs)
    assert info.value.field == field
    message = str(info.value)
    assert field in message and fragment in message
    assert repr(info.value.value) in message or str(info.value.value) in message


@pytest.mark.parametrize(
    ("kwargs", "schedule", "calls"),
    [
        ({"method": "pdr", "width": 4, "depth": 3}, (4, 4, 1), 4 + 4 + 1 + 2),
        ({"method": "pdr", "width": 5, "depth": 1}, (5,), 5),
        ({"method": "pdr", "depth": 3, "width_schedule": (8, 4, 1)}, (8, 4, 1), 13 + 2),
        ({"method": "pdr", "depth": 2, "width": 4, "distill": "topk"}, (4, 1), 5),
        ({"method": "sr", "width": 7, "depth": 4}, (1, 1, 1, 1), 4),
        ({"method": "sr", "depth": 4, "sr_summary": True}, (1, 1, 1, 1), 4 + 3),
        ({"method": "single", "width": 7, "depth": 4}, (1,), 1),
        ({"method": "vote", "width": 6, "depth": 4}, (6,), 6),
    ],
)
def test_schedule_and_call_count(kwargs, schedule, calls):
    config = RunConfig(**kwargs)
    assert config.schedule == schedule
    assert config.calls == calls
    assert config.to_dict()["width_schedule"] == list(schedule)


def test_config_is_frozen_and_round_trips():
    config = RunConfig(method="pdr", depth=3, width_schedule=(8, 4, 1), distill="topk", k=3)
    with pytest.raises(AttributeError):
        config.width = 3  # type: ignore[misc]
    assert RunConfig.from_dict(config.to_dict()) == config


def test_parse_schedule():
    assert parse_schedule("8, 4,1") == (8, 4, 1)
    with pytest.raises(ConfigError, match="comma-separated"):
        parse_schedule("8;4")


def test_templates_refuse_unknown_and_missing_variables():
    with pytest.raises(TemplateError, match=r"unknown variable\(s\) \{answer\}"):
        PromptSet(draft="Solve {question} given {answer}")
    with pytest.raises(TemplateError, match=r"must use \{workspace\}"):
        PromptSet(refine="Solve {question} again")
    with pytest.raises(TemplateError, match="does not parse"):
        PromptSet(draft="Solve {question")
    with pytest.raises(TemplateError, match="unknown template name"):
        PromptSet.from_dict({"drafts": "x {question}"})
