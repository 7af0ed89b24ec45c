"""The Run page's controls for a method's own settings, generated from its declaration.

The built-in methods' settings are RunConfig fields with controls of their own on the page;
a plugin method's other settings (pdr_core.run.api) get one control each here, keyed
`method_setting_<name>`, bounded as declared and starting from the declared default.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from pdr_core.run.api import Method, Setting
from ui.state import kept


def _control(setting: Setting, key: str) -> Any:
    label = setting.label or setting.name.replace("_", " ")
    if setting.type is bool:
        return st.checkbox(label, help=setting.help, **kept(key, bool(setting.default)))
    if setting.choices:
        return st.selectbox(label, list(setting.choices), help=setting.help,
                            **kept(key, setting.default))
    if setting.type is str:
        return st.text_input(label, help=setting.help, **kept(key, setting.default or ""))
    step = 1 if setting.type is int else 0.05
    start = setting.type(setting.default if setting.default is not None
                         else setting.low or 0)
    return st.number_input(label, min_value=setting.low, max_value=setting.high, step=step,
                           help=setting.help, **kept(key, start))


def method_setting_controls(method: Method) -> dict[str, Any]:
    """A control per setting of `method` that no RunConfig field holds: their values by
    name, for RunConfig.method_settings."""
    own = [s for s in method.settings if not s.stored_in_config]
    if not own:
        return {}
    st.caption(f"{method.label}: its own settings")
    return {s.name: _control(s, f"method_setting_{s.name}") for s in own}
