"""Run page: set a question and the method's knobs, preview the budget, run it live."""

from __future__ import annotations

import streamlit as st

from pdr_core.config import (
    DEFAULT_PRESET,
    DISTILLS,
    FINAL_VERIFY_METHODS,
    PRESETS,
    RANKED,
    RUN_DEFAULTS,
    SELECTIONS,
    ConfigError,
    RunConfig,
)
from pdr_core.evals.examples import examples
from pdr_core.providers import ProviderError
from pdr_core.render.textfmt import inert
from pdr_core.run.jobs import RunJob
from pdr_core.run.methods import check_question
from pdr_core.run.preview import known_price, preview
from pdr_core.run.registry import method_registry
from pdr_core.store import RunNotFound
from ui.code_view import code_problem_for, pick_code_problem, run_task
from ui.components import (
    ACTIVE_RUN,
    BUILT_IN,
    chosen_prompts,
    endpoint_or_stop,
    get_store,
    jobs,
    load_trace,
    make_provider,
    metric_row,
    start_job,
)
from ui.endpoints import app_environ, on_bundled_model
from ui.knobs import DEPTH_RANGE, TOKEN_STEPS, WIDTH_RANGE, WORKSPACE_STEPS, knob_default
from ui.live_view import live_run_view
from ui.method_settings import method_setting_controls
from ui.navigation import through_app
from ui.state import MOA_PROPOSERS, kept, kept_value, set_kept

through_app()

METHODS = method_registry()  # built-ins and installed plugins, by the name a run records
METHOD_LABELS = {name: info.label for name, info in METHODS.items()}
DISTILL_HELP = {
    "summary": "One model call writes a summary, cut to κ: agreements, contradictions, "
               "derived facts, unresolved sub-goals, next actions.",
    "topk": "The k best drafts by the consensus ranking (largest answer cluster first, then "
            "shorter: this tool's heuristic) form one workspace shared by every next-round "
            "generation, each draft cut to its share of κ. No model call.",
    "per-sample-topk": "Each next-round generation gets its own k drafts from the top "
                       "candidates by consensus. No model call.",
    "random-k": "Each next-round generation gets k drafts drawn at random (seeded). "
                "No model call; the paper's weakest operator.",
    "feedback": "Code problems: the top-k programs with their test results (which tests "
                "failed, the assertion or traceback), cut to κ. No model call.",
}


EXAMPLES = examples()


def use_example() -> None:
    title = st.session_state["example"]
    example = next((e for e in EXAMPLES if e.title == title), None)
    if example is not None:
        set_kept("question", example.question)
        set_kept("reference", example.answer)


st.title("Run")
settings = endpoint_or_stop()
if on_bundled_model(settings) and st.session_state.get("provider") is None:
    st.info("Running on the bundled SmolLM2-135M model: a small demo model, quick and not "
            "clever. Point PDR Inspector at a real endpoint on the Settings page for real "
            "reasoning.", icon="ℹ️")

left, right = st.columns([3, 2])
with left:
    st.selectbox("Example problem", ["—"] + [e.title for e in EXAMPLES],
                 **kept("example", then=use_example))
    code_pick = pick_code_problem()
    question = st.text_area("Question", **kept("question"), height=120,
                            placeholder="A math problem with a checkable answer, or a code "
                                        "problem's prompt")
    code_problem, code_error = code_problem_for(code_pick, question or "")
    reference = st.text_input("Reference answer (optional)", **kept("reference"),
                              help="Marks every node and the final answer right or wrong.")
with right:
    method = st.radio("Method", list(METHOD_LABELS), format_func=METHOD_LABELS.get,
                      **kept("method"))
    declared = METHODS[method]
    distill = st.selectbox("Distill operator", DISTILLS,
                           **kept("distill", knob_default("distill")),
                           disabled=not declared.uses("distill"))
    st.caption(DISTILL_HELP[distill])
    selection = st.radio("Top-k ranking", SELECTIONS, horizontal=True,
                         **kept("selection", knob_default("selection")),
                         disabled=method != "pdr" or distill not in RANKED,
                         help="consensus: by answer clusters (this tool's heuristic); verify: "
                              "the model scores each draft, one call per draft.")
    verify_last = st.checkbox("Final selection by verify",
                              **kept("final_verify", knob_default("final_select") == "verify"),
                              disabled=method not in FINAL_VERIFY_METHODS,
                              help="A last round wider than 1: the model scores each draft "
                                   "(one call each) and the best-scored answer wins, instead "
                                   "of a majority vote.")
    sr_summary = st.checkbox("SR: notes on the previous solution",
                             **kept("sr_summary", knob_default("sr_summary")),
                             disabled=not declared.uses("sr_summary"),
                             help="SR refines one answer with no distill call; this adds a "
                                  "summary call per round whose notes follow the solution.")
    sr_feedback = st.checkbox("SR: the previous program's test results",
                              **kept("sr_feedback", knob_default("sr_feedback")),
                              disabled=not declared.uses("sr_feedback"),
                              help="Code problems: the refine prompt gets what the previous "
                                   "program's tests said (failed tests, messages), within "
                                   "kappa; no call.")
    prompt_sets = get_store().prompt_sets()
    st.selectbox("Prompt set", [BUILT_IN, *prompt_sets], **kept("prompt_set"),
                 format_func=lambda n: n if n == BUILT_IN else f"{n} (v{prompt_sets[n]})",
                 help="Edit templates on the Prompts page.")

c1, c2, c3 = st.columns(3)
with c1:
    preset = st.radio("Preset", list(PRESETS), horizontal=True, **kept("preset", DEFAULT_PRESET),
                      disabled=method != "pdr",
                      format_func={"small": "small (this page's widths)",
                                   "paper": "paper (8, 4, 1)"}.get,
                      help="paper: the paper's example schedule, 8 drafts, 4 refinements, 1 "
                           "final; small: width M for every round but the last.")
    paper = method == "pdr" and preset == "paper"
    width = st.slider("Width M (drafts per round)", *WIDTH_RANGE,
                      **kept("width", knob_default("width")),
                      disabled=not declared.uses("width") or paper,
                      help="Parallel generations in every round but the last; rsa: the "
                           "population N; tournament, select: the candidates.")
    depth = st.slider("Depth R (rounds)", *DEPTH_RANGE, **kept("depth", knob_default("depth")),
                      disabled=not declared.uses("depth") or paper,
                      help="Rounds of generation; the last has width 1. rsa: the "
                           "aggregation steps T after the drafts.")
with c2:
    max_tokens = st.select_slider("Budget: max tokens per call", TOKEN_STEPS,
                                  **kept("max_tokens", knob_default("max_tokens")),
                                  help="Every call's output cap.")
    kappa = st.select_slider("Workspace bound κ (tokens)", WORKSPACE_STEPS,
                             **kept("workspace_tokens", knob_default("workspace_tokens")),
                             help="Each workspace is at most this long, whatever the depth.")
    distill_tokens = st.select_slider(
        "Summary call's max tokens", ["per-call", *TOKEN_STEPS],
        **kept("distill_max_tokens", "per-call"),
        help="The summary call's own output budget (reasoning models think in it too); its "
             "text is then cut to κ.")
with c3:
    k = st.slider("k (drafts per workspace)", 1, 16, **kept("k", knob_default("k")),
                  help="Used by the top-k and random-k operators; rsa: the candidates K "
                       "each aggregation reads.")
    group = st.slider("Tournament group G", 2, 8, **kept("group", knob_default("group")),
                      disabled=not declared.uses("group"),
                      help="Candidates a judge compares at once.")
    votes = st.slider("Tournament judges per group V", 1, 7,
                      **kept("votes", knob_default("votes")), disabled=not declared.uses("votes"),
                      help="Judge calls per group; the candidate most of them name advances "
                           "(a tie: the earliest).")
    agree = st.slider("Stop when answers agree (0 = never)", 0.0, 1.0, step=0.05,
                      **kept("stop_when_agree", knob_default("stop_when_agree") or 0.0),
                      disabled=not declared.adaptive,
                      help="Stop after the first round whose answers agree at least this "
                           "much (share giving the most common answer).")
    aggregate_last = st.checkbox("RSA: end with one aggregation", **kept("rsa_aggregate",
                                              knob_default("final_select") == "aggregate"),
                                 disabled=not declared.uses("final_select"),
                                 help="Instead of a vote over the last population.")
    temperature = st.slider("Temperature", 0.0, 2.0, step=0.1,
                            **kept("temperature", knob_default("temperature")))
    total_cap = st.number_input("Total-token cap (0 = none)", min_value=0, step=1000,
                                **kept("total_budget"),
                                help="No call is launched that could take B_total past it.")

# moa's proposers start from the Settings page's list.
own_settings = method_setting_controls(declared,
                                       {"proposers": kept_value(MOA_PROPOSERS) or ""})
config_error = None
config = None
try:
    config = RunConfig(
        method=method, width=width, depth=PRESETS["paper"]["depth"] if paper else depth,
        distill=distill, k=k,
        width_schedule=PRESETS["paper"]["width_schedule"] if paper else None,
        max_tokens=max_tokens, workspace_tokens=kappa,
        sr_summary=bool(sr_summary) and declared.uses("sr_summary"),
        sr_feedback=bool(sr_feedback) and declared.uses("sr_feedback"),
        group=group, votes=votes,
        stop_when_agree=float(agree) if agree and declared.adaptive else None,
        final_select="aggregate" if aggregate_last and method == "rsa" else
        "verify" if verify_last and method in FINAL_VERIFY_METHODS
        else RUN_DEFAULTS["final_select"],
        selection=selection if method == "pdr" and distill in RANKED
        else RUN_DEFAULTS["selection"],
        method_settings=own_settings,
        distill_max_tokens=None if distill_tokens == "per-call" else int(distill_tokens),
        total_budget=int(total_cap) or None, temperature=float(temperature),
        model=settings.model or "", base_url=settings.base_url or "",
        prompts=chosen_prompts("prompt_set"),
    )
    config = declared.prepare(config)  # a plugin's own settings, checked and completed
except ConfigError as exc:
    config_error = str(exc)

with st.expander("Budget preview", expanded=True):
    if config is None:
        st.error(f"Fix the settings: {config_error}")
    else:
        price = known_price(config.model) if not settings.uses_local else None
        p1, p2 = st.columns(2)
        price_in = p1.number_input("Price per 1M input tokens ($)", min_value=0.0,
                                   **kept("price_in", price[0] if price else 0.0))
        price_out = p2.number_input("Price per 1M output tokens ($)", min_value=0.0,
                                    **kept("price_out", price[1] if price else 0.0))
        estimate = preview(config, question or "", (price_in, price_out))
        metric_row([("Calls", estimate.calls),
                    ("Worst-case B_seq", f"{estimate.worst_b_seq:,}"),
                    ("Worst-case B_total", f"{estimate.worst_b_total:,}"),
                    ("Cost estimate", f"${estimate.cost_usd:,.4f}")])
        st.caption(f"Schedule {', '.join(map(str, config.schedule))}: widths of each round."
                   + (f" The last round is {config.schedule[-1]} wide: its answer is chosen by "
                      f"{config.final_select}." if config.schedule[-1] > 1 else ""))

store = get_store()
# A reloaded tab or a shared link (?run=ID) reattaches to its run, live if it still runs.
linked = st.query_params.get("run")
if linked and linked != st.session_state.get(ACTIVE_RUN):
    st.session_state[ACTIVE_RUN] = linked
active = st.session_state.get(ACTIVE_RUN)
job = jobs().get(active) if active else None

b1, b2 = st.columns([1, 5])
start = b1.button("Run", type="primary", key="run_button",
                  disabled=config is None or (job is not None and job.running))
if start:
    refused = f"Complete the code problem first: {code_error}" if code_error else None
    try:
        check_question(question or "")
    except ConfigError as exc:
        refused = (f"Write a question first (or pick an example): {exc}" if not
                   (question or "").strip() else f"Fix the question: {exc}")
    if refused:
        st.error(refused)
    else:
        try:
            provider = make_provider(settings)
        except ProviderError as exc:
            st.error(f"Cannot use the endpoint: {exc}")
        else:
            new_job = RunJob(store, question, config, provider,
                             reference=(reference or "").strip() or None,
                             task=run_task(code_problem), environ=app_environ())
            if start_job(new_job):
                job = new_job
                st.session_state[ACTIVE_RUN] = active = job.run_id

if job is not None and job.running and b2.button("Cancel", key="cancel_button"):
    job.cancel()
    job.wait(timeout=10)

if active:
    try:
        trace = load_trace(active)
    except RunNotFound:
        st.session_state.pop(ACTIVE_RUN, None)
        st.query_params.pop("run", None)
        if linked == active:
            st.warning(f"The linked run {inert(active)} is not in this store.")
    else:
        # The address names the run shown: a reload or the link reattaches to it.
        st.query_params["run"] = active
        st.divider()
        live_run_view(trace, prefix="live")
