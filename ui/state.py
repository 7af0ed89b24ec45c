"""Per-browser-session state that outlives pages, reruns and fragment timers.

Streamlit drops the state of a widget that a run does not draw (another page, a fragment
run, a rerun cut short), and a widget drawn again after that starts from its default. So
every value a person sets and expects to keep (the question, the sliders, the endpoint) is
kept in a plain session-state dict, written when the person changes the widget and given
back to the widget before it is drawn. Widgets that show one run's data are keyed by the
run (`run_key`), so nothing typed for one run can reach another.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import streamlit as st

from pdr_core.user_settings import SettingsFileError, load_settings

KEPT = "kept_values"  # widget key -> the value last set by the person or the app
SAVED = "saved_settings"  # the settings file's UserSettings, read once per session
SAVED_ERROR = "saved_settings_error"  # why the settings file could not be read
DEFAULTS = "slider_defaults"  # the Run page's slider defaults (Settings page)
# Mixture of agents' proposers chosen on the Settings page: the Run page's default for moa.
MOA_PROPOSERS = "moa_proposers"


def init_session() -> None:
    """Once per browser session, before any page: read the saved settings, if any."""
    if SAVED in st.session_state:
        return
    try:
        saved = load_settings()
    except SettingsFileError as exc:
        saved = None
        st.session_state[SAVED_ERROR] = str(exc)
    st.session_state[SAVED] = saved
    if saved is not None:
        st.session_state.setdefault(DEFAULTS, dict(saved.defaults))
        if saved.proposers:
            _kept().setdefault(MOA_PROPOSERS, saved.proposers)


def run_key(run_id: str, *parts: str) -> str:
    """The key of a widget that shows data of run `run_id` (and of a node, when `parts`
    name one): `parts` joined by "_", then the run id."""
    return "_".join((*parts, run_id))


def _kept() -> dict[str, Any]:
    return st.session_state.setdefault(KEPT, {})


def kept_value(key: str, default: Any = None) -> Any:
    """The kept value of widget `key`, or `default` when nothing was kept."""
    return _kept().get(key, default)


def set_kept(key: str, value: Any) -> None:
    """Set widget `key`'s value from code (an example picked, a default applied); call
    before the widget is drawn in this run."""
    _kept()[key] = value
    st.session_state[key] = value


def forget(key: str) -> None:
    """Drop widget `key`'s kept value: it starts from its default when next drawn."""
    _kept().pop(key, None)
    st.session_state.pop(key, None)


def _remember(key: str, then: Callable[[], None] | None) -> None:
    _kept()[key] = st.session_state[key]
    if then is not None:
        then()


def restore_form(defaults: Mapping[str, Any]) -> None:
    """Before a form's widgets are drawn: give each widget Streamlit dropped (another page was
    shown) its kept value, else its default. A widget still in session state keeps what it
    holds, a change the person just made included."""
    values = _kept()
    for key, default in defaults.items():
        if key not in st.session_state:
            st.session_state[key] = values.get(key, default)


def keep_form(keys: Iterable[str]) -> None:
    """After a form's widgets are drawn: keep their values, as `kept` does on each change."""
    values = _kept()
    for key in keys:
        values[key] = st.session_state[key]


def kept(key: str, default: Any = None, then: Callable[[], None] | None = None
         ) -> dict[str, Any]:
    """Widget arguments that bind widget `key` to its kept value: `st.slider(..., **kept(
    "width", 4))`. The kept value (else `default`, when given) is put back before the
    widget is drawn, and every change the person makes is kept (then `then` is called)."""
    values = _kept()
    if key not in values and default is not None:
        values[key] = default
    if key in values:
        st.session_state[key] = values[key]
    return {"key": key, "on_change": _remember, "args": (key, then)}
