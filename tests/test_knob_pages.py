"""The pages' knob controls start from RunConfig's defaults (and Evaluate's from EvalSpec's),
found by key through AppTest."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from pdr_core.config import CODE_ONLY_DISTILLS, DISTILLS, RunConfig
from pdr_core.evals.spec import RUNS_AT_ONCE, EvalSpec
from pdr_core.testing import FakeProvider

ROOT = Path(__file__).resolve().parent.parent


def _page(name: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / name), default_timeout=30)
    at.session_state["provider"] = FakeProvider()
    return at.run()


def test_run_page_knobs_start_at_runconfigs_defaults(db):
    at = _page("run.py")
    assert not at.exception, at.exception
    defaults = RunConfig()
    for key in ("width", "depth", "k", "group", "votes", "temperature"):
        assert at.slider(key=key).value == getattr(defaults, key), key
    for key in ("max_tokens", "workspace_tokens"):
        assert at.select_slider(key=key).value == getattr(defaults, key), key
    assert at.selectbox(key="distill").value == defaults.distill
    assert list(at.selectbox(key="distill").options) == list(DISTILLS)
    assert at.radio(key="method").value == defaults.method
    assert at.radio(key="selection").value == defaults.selection
    for key in ("sr_summary", "sr_feedback"):
        assert at.checkbox(key=key).value is getattr(defaults, key), key
    assert at.checkbox(key="final_verify").value is (defaults.final_select == "verify")


def test_settings_page_defaults_start_at_runconfigs(db):
    at = _page("settings.py")
    assert not at.exception, at.exception
    defaults = RunConfig()
    assert at.slider(key="default_width").value == defaults.width
    assert at.slider(key="default_depth").value == defaults.depth
    assert at.select_slider(key="default_max_tokens").value == defaults.max_tokens


def test_evaluate_page_sweep_starts_at_evalspecs_defaults(db):
    at = _page("evaluate.py")
    assert not at.exception, at.exception
    spec = EvalSpec(dataset="any")
    assert at.multiselect(key="eval_methods").value == list(spec.methods)
    assert tuple(at.multiselect(key="eval_widths").value) == spec.widths
    assert tuple(at.multiselect(key="eval_depths").value) == spec.depths
    assert tuple(at.multiselect(key="eval_max_tokens").value) == spec.max_tokens
    assert at.selectbox(key="eval_distill").value == spec.distill == RunConfig().distill
    # A problem set of questions offers every operator but those that need code.
    assert list(at.selectbox(key="eval_distill").options) == [
        d for d in DISTILLS if d not in CODE_ONLY_DISTILLS]
    assert at.slider(key="eval_concurrency").value == RUNS_AT_ONCE
