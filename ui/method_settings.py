"""The Run page's controls for a method's own settings, generated from its declaration.

The built-in methods' settings are RunConfig fields with controls of their own on the page;
a plugin method's other settings (pdr_core.run.api) get one control each here, keyed
`method_setting_<name>`, bounded as declared and starting from the declared default.
Evaluate gets one control per such setting (and per built-in setting its spec holds no
field for) whose values, several of them an axis, go to EvalSpec.method_settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from pdr_core.config import ConfigError
from pdr_core.evals.spec import sweepable
from pdr_core.run.api import Method, Setting
from ui.state import kept


def _control(setting: Setting, key: str, default: Any) -> Any:
    label = setting.label or setting.name.replace("_", " ")
    if setting.type is bool:
        return st.checkbox(label, help=setting.help, **kept(key, bool(default)))
    if setting.choices:
        return st.selectbox(label, list(setting.choices), help=setting.help,
                            **kept(key, default))
    if setting.type is str:
        return st.text_input(label, help=setting.help, **kept(key, default or ""))
    step = 1 if setting.type is int else 0.05
    start = setting.type(default if default is not None else setting.low or 0)
    return st.number_input(label, min_value=setting.low, max_value=setting.high, step=step,
                           help=setting.help, **kept(key, start))


def method_setting_controls(method: Method, defaults: dict[str, Any] | None = None
                            ) -> dict[str, Any]:
    """A control per setting of `method` that no RunConfig field holds, starting from
    `defaults` (the Settings page's) else the declared default: their values by name, for
    RunConfig.method_settings."""
    own = [s for s in method.settings if not s.stored_in_config]
    if not own:
        return {}
    st.caption(f"{method.label}: its own settings")
    defaults = defaults or {}
    return {s.name: _control(s, f"method_setting_{s.name}", defaults.get(s.name, s.default))
            for s in own}


def _sweep_control(setting: Setting, key: str, users: Sequence[str]) -> tuple[Any, ...]:
    """One Evaluate control for `setting`: the values to sweep, parsed as declared."""
    label = f"{setting.label or setting.name.replace('_', ' ')} ({', '.join(users)})"
    if setting.type is bool or setting.choices:
        options = [False, True] if setting.type is bool else list(setting.choices)
        chosen = st.multiselect(label, options, help=setting.help,
                                **kept(key, [setting.default]))
        return tuple(setting.check(v) for v in chosen) or (setting.default,)
    if setting.type is str:  # free text may hold commas: one value per line
        text = st.text_area(label, help=f"{setting.help} One value per line.", height=68,
                            **kept(key, setting.default or ""))
        lines = [line.strip() for line in text.splitlines() if line.strip()] or [""]
        return tuple(v for line in lines for v in setting.parse(line))
    default = "" if setting.default is None else str(setting.default)
    text = st.text_input(label, help=f"{setting.help} Comma-separated: several values "
                         f"sweep them ({setting.allowed()}).", **kept(key, default))
    return setting.parse(text) if text.strip() else (setting.default,)


def method_sweep_controls(methods: Sequence[str]) -> dict[str, tuple[Any, ...]]:
    """Evaluate's control per setting `methods` declare that the spec sweeps through
    `EvalSpec.method_settings` (keyed `eval_sweep_<name>`), drawn all before any is
    parsed; the values that differ from the declared default, by name. Raises
    ConfigError naming a value that is not allowed."""
    found = sweepable(methods)
    if not found:
        return {}
    values, errors = {}, []
    for name, (setting, users) in found.items():
        try:
            values[name] = _sweep_control(setting, f"eval_sweep_{name}", users)
        except ConfigError as exc:
            errors.append(exc)
    if errors:
        raise errors[0]
    return {name: v for name, (setting, _) in found.items()
            if (v := values[name]) != (setting.default,)}
