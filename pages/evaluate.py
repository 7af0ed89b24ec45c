"""Evaluate page: sweep methods and settings over a problem set, then accuracy vs budget.

Thin: datasets, sweeps, statistics and exports are pdr_core.evals; the results are ui.eval_results.
The evaluation runs as a job on its own thread and event loop; this page reads the store.
"""

from __future__ import annotations

import streamlit as st

from pdr_core.code.problems import is_code_problem
from pdr_core.config import RUN_DEFAULTS, ConfigError
from pdr_core.evals.benchmarks import BENCHMARKS
from pdr_core.evals.estimate import estimate, estimate_rows
from pdr_core.evals.records import create_evaluation, list_evaluations, load_evaluation
from pdr_core.evals.run import EvalJob
from pdr_core.evals.spec import (
    DEFAULT_METHODS,
    EVAL_PRESETS,
    RUNS_AT_ONCE,
    EvalError,
    EvalSpec,
    method_order,
)
from pdr_core.providers import ProviderError
from pdr_core.run.preview import known_price
from pdr_core.run.registry import method_registry
from ui.code_view import execution_on
from ui.components import endpoint_or_stop, get_store, make_provider
from ui.eval_problems import SOURCES, choose_problems
from ui.eval_results import render_results
from ui.knobs import EVAL_DEPTHS, EVAL_WIDTHS, TOKEN_STEPS, distills
from ui.method_settings import method_sweep_controls
from ui.navigation import through_app
from ui.state import keep_form, restore_form

through_app()

EVAL_JOBS = "eval_jobs"
# The form's widgets and defaults: kept in the session's kept values (ui.state) after every
# run of this page and given back before its widgets, since Streamlit drops them while
# another page is shown.
FORM = {"eval_source": SOURCES[0], "eval_benchmark": BENCHMARKS[0].name,
        "eval_gen_kind": "arith", "eval_gen_n": 10,
        "eval_gen_difficulty": "medium", "eval_gen_seed": 0, "eval_path": "",
        "eval_limit": 0, "eval_methods": list(DEFAULT_METHODS),
        "eval_widths": [RUN_DEFAULTS["width"]], "eval_depths": [RUN_DEFAULTS["depth"]],
        "eval_max_tokens": [RUN_DEFAULTS["max_tokens"]],
        "eval_distill": RUN_DEFAULTS["distill"], "eval_concurrency": RUNS_AT_ONCE,
        "eval_name": "", "eval_id_input": "", "eval_matched_bseq": False}


def code_note(code: bool) -> None:
    """What happens to a code dataset's programs, with this session's execution switch."""
    if not code:
        return
    if execution_on():
        st.caption("Code problems: each program runs against its tests on the server "
                   "running this app, contained (see Settings); pass@1 is the share whose "
                   "final program passes every test.")
    else:
        st.warning("Code execution is off (Settings): the programs will not be run, so "
                   "pass@1 stays unknown. Switch it on in Settings to grade them.")


def use_preset(name: str) -> None:
    """Set the methods (and matched passes) of a named sweep; the rest stays as chosen."""
    preset = EVAL_PRESETS[name]
    st.session_state["eval_methods"] = [m for m in method_order() if m in preset.methods]
    st.session_state["eval_matched_bseq"] = preset.matched_bseq


def chosen_methods() -> tuple[str, ...]:
    return tuple(m for m in method_order() if m in st.session_state["eval_methods"])


def build_spec(label: str, model: str, base_url: str, sweeps: dict, code: bool = False) -> EvalSpec:
    return EvalSpec(
        dataset=label,
        methods=chosen_methods(),
        method_settings=sweeps,
        widths=tuple(sorted(st.session_state["eval_widths"])),
        depths=tuple(sorted(st.session_state["eval_depths"])),
        max_tokens=tuple(sorted(st.session_state["eval_max_tokens"])),
        distill=st.session_state["eval_distill"], model=model, base_url=base_url,
        name=st.session_state["eval_name"].strip(),
        matched_bseq=st.session_state["eval_matched_bseq"],
        execute_code=code and execution_on(),
    )


st.title("Evaluate")
st.caption("Every problem × method × setting becomes a stored run; accuracy is plotted "
           "against mean B_seq and B_total with 95% Wilson intervals.")
restore_form(FORM)
settings = endpoint_or_stop()
store = get_store()
jobs: dict[str, EvalJob] = st.session_state.setdefault(EVAL_JOBS, {})

problems, label = choose_problems()
code = bool(problems) and any(is_code_problem(p) for p in problems)
code_note(code)
if st.session_state["eval_distill"] not in distills(code):  # kept from a code dataset
    st.session_state["eval_distill"] = RUN_DEFAULTS["distill"]

for name, preset in EVAL_PRESETS.items():
    st.button(preset.label, key=f"eval_preset_{name}", on_click=use_preset, args=(name,),
              help="Sets the methods and matched single passes; widths, depths and budgets "
                   "stay as chosen, so every method runs over the same drafts.")
c1, c2, c3, c4 = st.columns(4)
METHODS = method_registry()
c1.multiselect("Methods", list(method_order()), key="eval_methods",
               help="; ".join(f"{m}: {i.label}" for m, i in METHODS.items()))
c2.multiselect(f"Widths ({', '.join(m for m, i in METHODS.items() if i.uses('width'))})",
               EVAL_WIDTHS, key="eval_widths")
c3.multiselect(f"Depths ({', '.join(m for m, i in METHODS.items() if i.uses('depth'))})",
               EVAL_DEPTHS, key="eval_depths")
c4.multiselect("Max tokens per call", TOKEN_STEPS, key="eval_max_tokens")
c1, c2, c3, c4 = st.columns(4)
c1.selectbox("Distill operator", distills(code), key="eval_distill",
             help="feedback (code problems): the next round sees the selected programs "
                  "with their failed tests." if code else None)
concurrency = c2.slider("Runs at once", 1, 32, key="eval_concurrency",
                        help="Runs in flight together; each run also makes its own calls "
                             "in parallel.")
c3.text_input("Name (optional)", key="eval_name")
c4.text_input("Evaluation id (optional)", key="eval_id_input",
              help="An id already stored resumes that evaluation: its completed runs are "
                   "kept, failed and missing ones run.")
st.checkbox("Matched B_seq: a single pass at each PDR / SR arm's B_seq", key="eval_matched_bseq",
            help="Per problem and PDR or SR arm, one more run: a single pass whose max tokens "
                 "is that arm's B_seq on the problem, run once the arm's run is done. The "
                 "paper's central comparison; shown as its own dashed line in the figure.")
sweeps: dict = {}
with st.expander("The methods' other settings (several values: one arm each)"):
    try:
        sweeps = method_sweep_controls(chosen_methods())
        sweep_error = None
    except ConfigError as exc:
        sweep_error = exc
keep_form(FORM)

spec = None
try:
    if sweep_error is not None:
        raise sweep_error
    spec = build_spec(label, settings.model or "", settings.base_url or "", sweeps, code)
except ConfigError as exc:
    st.error(f"Fix the settings: {exc}")

if spec is not None and problems:
    price = known_price(spec.model) if not settings.uses_local else None
    arms = estimate(spec, problems, price)
    with st.expander("Budget estimate (worst case: every call writes its whole budget)",
                     expanded=True):
        m = st.columns(4)
        m[0].metric("Runs", f"{sum(a.runs for a in arms):,}")
        m[1].metric("Calls", f"{sum(a.calls for a in arms):,}")
        m[2].metric("Worst-case B_total", f"{sum(a.worst_b_total for a in arms):,}")
        m[3].metric("Cost estimate", "—" if price is None
                    else f"${sum(a.cost_usd or 0.0 for a in arms):,.4f}")
        st.dataframe(estimate_rows(arms), hide_index=True, key="eval_estimate")

running = any(job.running for job in jobs.values())
if st.button("Launch evaluation", type="primary", key="eval_launch",
             disabled=spec is None or not problems or running):
    try:
        provider = make_provider(settings)
        spec = build_spec(label, provider.model, provider.base_url, sweeps, code)
        evaluation = create_evaluation(store, spec, problems,
                                       st.session_state["eval_id_input"].strip() or None)
    except (ProviderError, EvalError, ConfigError) as exc:
        st.error(f"Cannot launch: {exc}")
    else:
        jobs[evaluation.id] = EvalJob(store, evaluation, provider, int(concurrency)).start()
        st.session_state["eval_view"] = evaluation.id
        running = True

st.divider()
st.subheader("Results")
stored = list_evaluations(store)
if not stored:
    st.info("No evaluation yet: launch one above, or run `python -m pdr_core eval`.")
    st.stop()
names = {e.id: f"{e.name or e.id} · {e.dataset} · {e.problems} problems · "
               f"{e.created_at[:19].replace('T', ' ')}" for e in stored}
if st.session_state.get("eval_view") not in names:
    st.session_state["eval_view"] = stored[0].id
view = st.selectbox("Evaluation", list(names), format_func=names.get, key="eval_view")
evaluation = load_evaluation(store, view)
job = jobs.get(view)

if job is not None and job.running:
    if st.button("Cancel", key="eval_cancel"):
        job.cancel()
        job.wait(timeout=10)
elif st.button("Resume (run what is missing or failed)", key="eval_resume",
               disabled=running):
    try:
        provider = make_provider(settings)
    except ProviderError as exc:
        st.error(f"Cannot use the endpoint: {exc}")
    else:
        job = jobs[view] = EvalJob(store, evaluation, provider, int(concurrency)).start()

timed = job is not None and job.running


@st.fragment(run_every=1.0 if timed else None)
def results_view() -> None:
    current = st.session_state.get(EVAL_JOBS, {}).get(view)
    render_results(store, evaluation, current)
    if timed and (current is None or not current.running):
        st.rerun()  # the evaluation ended: draw the whole page once more, without the timer

results_view()
