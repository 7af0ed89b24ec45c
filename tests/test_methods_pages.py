"""The Run page offers every registered method, runs them, and shows what they decided."""

from __future__ import annotations

import pytest
from test_app import app, start_run

from pdr_core.config import RunConfig
from pdr_core.run.registry import method_registry
from pdr_core.store import Store
from pdr_core.testing import FakeProvider


def test_the_method_radio_lists_every_registered_method(db):
    at = app(FakeProvider())
    assert list(at.radio(key="method").options) == [i.label for i in method_registry().values()]


@pytest.mark.parametrize("method, knobs, config", [
    ("tournament", {"width": 4, "group": 2, "votes": 3},
     RunConfig(method="tournament", width=4, group=2, votes=3)),
    ("rsa", {"width": 3, "depth": 2, "k": 2}, RunConfig(method="rsa", width=3, depth=2, k=2)),
])
def test_new_methods_run_from_the_page_with_their_settings(db, method, knobs, config):
    at = app(FakeProvider())
    at.radio(key="method").set_value(method).run()
    for key, value in knobs.items():
        at.slider(key=key).set_value(value).run()
    calls = [m for m in at.metric if m.label == "Calls"]
    assert calls and calls[0].value == str(config.calls)
    start_run(at, "What is 17 * 3 + 1?", "52")
    assert not at.exception, at.exception
    [stored] = Store(db).list_runs()
    trace = Store(db).get_trace(stored.id)
    assert trace.status == "completed" and trace.budget.calls == config.calls
    assert any(c.value.startswith("Selected by") for c in at.caption)


def test_an_early_stop_and_a_selection_fallback_are_shown(db):
    at = app(FakeProvider())
    at.radio(key="method").set_value("pdr").run()
    at.slider(key="depth").set_value(4).run()
    at.slider(key="stop_when_agree").set_value(0.5).run()
    start_run(at, "What is 17 * 3 + 1?", "52")
    assert any("not made" in c.value for c in at.caption)
    at = app(FakeProvider())
    at.radio(key="method").set_value("select").run()
    start_run(at, "What is 17 * 3 + 1?", "52")
    # the fake model names no candidate: the vote it fell back to is a warning, not a caption
    assert any("fell back" in w.value for w in at.warning)
