"""Every knob's default on the command line is RunConfig's: `run` and `eval` parsed with no
knob flags give RunConfig()'s settings, and their --help says so."""

from __future__ import annotations

import pytest

from pdr_core.cli.evals import _spec
from pdr_core.cli.knobs import EVAL_KNOBS, RUN_KNOBS
from pdr_core.cli.parser import build_parser
from pdr_core.cli.runs import _config
from pdr_core.config import RunConfig
from pdr_core.evals.spec import EvalSpec
from pdr_core.testing import FakeProvider


def test_run_without_knob_flags_is_runconfigs_defaults():
    args = build_parser().parse_args(["run", "What is 2+2?"])
    assert _config(args, "m", "http://x/v1") == RunConfig(model="m", base_url="http://x/v1")


def test_eval_without_knob_flags_is_runconfigs_defaults():
    args = build_parser().parse_args(["eval", "gen:arith:2", "--out", "results"])
    provider = FakeProvider()
    spec = _spec(args, provider, code=False)
    assert spec == EvalSpec(dataset="gen:arith:2", model=provider.model,
                            base_url=provider.base_url)
    defaults = RunConfig()
    assert (spec.widths, spec.depths, spec.max_tokens) == (
        (defaults.width,), (defaults.depth,), (defaults.max_tokens,))
    for name in ("distill", "k", "workspace_tokens", "temperature", "seed"):
        assert getattr(spec, name) == getattr(defaults, name), name


def _entries(usage: str) -> dict[str, str]:
    """--help's options: each flag's entry (its names and help) on one line."""
    entries, current = {}, None
    for line in usage.splitlines():
        if line.startswith("  -"):
            current = line.split()[0].rstrip(",")
            entries[current] = line
        elif current and line.startswith(" " * 4):
            entries[current] += " " + line.strip()
        else:
            current = None
    return entries


@pytest.mark.parametrize(("command", "names"), [("run", RUN_KNOBS), ("eval", EVAL_KNOBS)])
def test_help_shows_runconfigs_default_of_every_knob(command, names, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    entries = _entries(capsys.readouterr().out)
    defaults = RunConfig()
    for name in names:
        flag = "--" + name.replace("_", "-")
        assert f"(default: {getattr(defaults, name)})" in entries[flag], flag
