"""Prompts: the templates of every stage, checked as you type, saved as versioned sets."""

from __future__ import annotations

import streamlit as st

from pdr_core.prompts import FIELDS, PromptSet, TemplateError, validate_template
from pdr_core.store import StoreError
from ui.components import BUILT_IN, get_store
from ui.navigation import through_app

through_app()

STAGE_HELP = {
    "system": "System message of every call (may be empty).",
    "draft": "Round 1: every draft sees the question only.",
    "summary": "The summary distill call: writes the bounded workspace from a round's drafts.",
    "refine": "Rounds 2..R of PDR: a generation sees the question and its workspace only.",
    "sr_refine": "Rounds 2..R of sequential refinement: the previous solution and notes on it.",
    "aggregate": "RSA: a new candidate from the question and k candidates of the previous "
                 "population.",
    "synthesize": "Mixture of agents: a proposer of layer 2.. and the aggregator read every "
                  "response of the layer before.",
    "judge": "Tournament: a judge compares one group's candidates and names the best by its "
             "number.",
    "select": "Generative selection: the model reads every candidate and names the best.",
    "verify": "Verify selection: the model scores one draft from 0 to 10 (one call per draft).",
}

st.title("Prompts")
store = get_store()
sets = store.prompt_sets()


def load_set() -> None:
    """Fill the editors with the chosen set's templates."""
    name = st.session_state["prompts_set"]
    prompts = PromptSet() if name == BUILT_IN else store.prompt_set(name)
    for stage, template in prompts.to_dict().items():
        st.session_state[f"prompt_{stage}"] = template
    st.session_state["prompts_name"] = "" if name == BUILT_IN else name


st.selectbox("Prompt set", [BUILT_IN, *sets], key="prompts_set", on_change=load_set,
             format_func=lambda n: n if n == BUILT_IN else f"{n} (version {sets[n]})")
if "prompt_draft" not in st.session_state:
    load_set()

edited = {}
for stage, (allowed, required) in FIELDS.items():
    variables = ", ".join(
        f"`{{{v}}}`" + (" (required)" if v in required else "") for v in sorted(allowed)
    ) or "none"
    edited[stage] = st.text_area(stage, key=f"prompt_{stage}", height=140,
                                 help=STAGE_HELP[stage])
    try:  # checked here so that the message shows under the template it is about
        validate_template(stage, edited[stage], allowed, required)
    except TemplateError as exc:
        st.error(f"Not valid, so the set cannot be used or saved: {exc}")
    st.caption(f"{STAGE_HELP[stage]} Variables: {variables}.")

try:
    prompts = PromptSet(**edited)
except TemplateError:
    prompts = None
    st.caption("Fix the templates marked in red above to save this set.")

c1, c2 = st.columns([3, 1])
name = c1.text_input("Save as (name)", key="prompts_name",
                     help="Saving under an existing name adds a new version; runs record the "
                          "exact templates they used.")
if c2.button("Save as new version", key="prompts_save", disabled=prompts is None):
    try:
        version = store.save_prompt_set(name, prompts)
    except StoreError as exc:
        st.error(str(exc))
    else:
        st.success(f"Saved {name.strip()!r} version {version}. Pick it on the Run page.")
