"""What the pages offer for the shared knobs and where each control starts.

A control starts from RunConfig's default (config.RUN_DEFAULTS), or from the Settings
page's default for the Run page where one is set; the steps and ranges below are the
pages' own choices, written once for the Run, Evaluate and Settings pages.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from pdr_core.config import CODE_ONLY_DISTILLS, DISTILLS, RUN_DEFAULTS
from ui.state import DEFAULTS

TOKEN_STEPS = [64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768]
WORKSPACE_STEPS = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192]
WIDTH_RANGE = (1, 16)
DEPTH_RANGE = (1, 8)
# Evaluate's choices: several of them sweep, one arm each.
EVAL_WIDTHS = [1, 2, 3, 4, 6, 8, 12, 16]
EVAL_DEPTHS = [1, 2, 3, 4, 5, 6]


def knob_default(name: str) -> Any:
    """Where the Run page's control of RunConfig field `name` starts: the Settings page's
    default, else RunConfig's."""
    return st.session_state.get(DEFAULTS, {}).get(name, RUN_DEFAULTS[name])


def distills(code: bool) -> list[str]:
    """The distill operators a problem set can use: those for code only with code."""
    return [d for d in DISTILLS if code or d not in CODE_ONLY_DISTILLS]
