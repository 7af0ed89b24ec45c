"""History: every stored run, newest first; filter, open, rename, tag, delete, import."""

from __future__ import annotations

from urllib.parse import urlencode

import streamlit as st

from pdr_core.render.report import render_report
from pdr_core.render.textfmt import inert
from pdr_core.run.registry import method_registry
from pdr_core.store import RunNotFound, StoreError
from pdr_core.trace import TraceError
from pdr_core.trace_import import MAX_IMPORT_BYTES, trace_from_json
from ui.components import get_store, load_trace, run_label, short, show_question
from ui.fork_view import render_fork_comparison, resume_controls
from ui.links import publish_run
from ui.live_view import cancel_control, live_run_view, watch_running
from ui.navigation import through_app
from ui.present_view import presenting, render_presentation
from ui.state import kept, run_key

through_app()

PAGE_SIZE = 50
STATUSES = ("completed", "failed", "interrupted", "running")
ANY = "any"
TABLE_COLUMNS = ["created", "status", "method", "model", "question", "answer", "correct",
                 "B_seq", "B_total", "name", "tags", "id"]
SHOWN_COLUMNS = ["status", "question", "answer"]

store = get_store()
if presenting() and (shown := st.query_params.get("run")):
    try:
        render_presentation(load_trace(shown))
    except RunNotFound:
        st.error(f"The linked run {inert(shown)} is not in this store.")
    st.stop()
st.title("History")

with st.expander("Import a trace (pdr-trace/1 JSON)"):
    upload = st.file_uploader("Trace file", type=["json"], key="history_import",
                              max_upload_size=MAX_IMPORT_BYTES // 2**20)
    if upload is not None and st.session_state.get("history_imported") != upload.file_id:
        try:
            run_id = store.import_trace(trace_from_json(upload.getvalue()))
        except TraceError as exc:
            st.error(inert(f"Not imported: {exc}. Nothing was written."))
        else:
            st.session_state["history_imported"] = upload.file_id
            st.session_state["history_open"] = run_id
            st.success(f"Imported as run {run_id}.")

# A link such as ?run=ID (the Evaluate page's) opens that run once, whatever the filters.
linked = st.query_params.get("run")
if linked and st.session_state.get("history_url") != linked:
    st.session_state["history_from_link"] = linked
    st.session_state["history_open"] = linked

f1, f2, f3, f4 = st.columns([1, 1, 1, 2])
REGISTERED = method_registry()
methods = [*REGISTERED, *(m for m in store.methods() if m not in REGISTERED)]
method = f1.selectbox("Method", [ANY, *methods], key="history_method",
                      format_func=lambda m: REGISTERED[m].name if m in REGISTERED else m)
model = f2.selectbox("Model", [ANY, *store.models()], key="history_model")
status = f3.selectbox("Status", [ANY, *STATUSES], key="history_status")
text = f4.text_input("Search question, name, tag or id", key="history_text")
evaluations = st.checkbox("Runs of evaluations", key="history_evals",
                          help="Evaluations make a run per problem and setting; they are "
                               "hidden unless this is ticked (open them from Evaluate).")
filters = {
    "method": None if method == ANY else method,
    "model": None if model == ANY else model,
    "status": None if status == ANY else status,
    "text": text.strip() or None,
    "evaluations": evaluations,
}
total = store.count_runs(**filters)
pages = max(1, -(-total // PAGE_SIZE))
page = st.number_input(f"Page (of {pages})", min_value=1, max_value=pages, step=1,
                       key="history_page") if pages > 1 else 1
runs = store.list_runs(limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, **filters)
hidden = 0 if evaluations else store.count_runs(**{**filters, "evaluations": True}) - total
st.caption(f"{total} run(s) match."
           + (f" {hidden} run(s) of evaluations hidden." if hidden else ""))
from_link = st.session_state.get("history_from_link")
if from_link and from_link == st.session_state.get("history_open") and \
        all(r.id != from_link for r in runs):
    # the linked run, shown even where the filters leave it out
    found = [r for r in store.list_runs(limit=10, text=from_link, evaluations=True)
             if r.id == from_link]
    if not found:
        st.warning(f"The linked run {from_link} is not in this store.")
    runs = found + runs
if not runs:
    st.info("No runs match: start one on the Run page or with `python -m pdr_core run`, "
            "or import a trace above.")
    st.stop()

verdict = {True: "right", False: "wrong", None: ""}
# A narrow page fits the few columns shown by default; the person picks any others.
columns = st.multiselect("Columns", TABLE_COLUMNS, **kept("history_columns", SHOWN_COLUMNS))
table = st.dataframe(
    [
        {
            "created": r.created_at[:19].replace("T", " "),
            "status": r.status,
            "method": r.method,
            "model": r.model,
            "question": short(r.question, 70),
            "answer": " · ".join(filter(None, (r.final_answer, verdict[r.correct]))),
            "correct": verdict[r.correct],
            "B_seq": r.b_seq,
            "B_total": r.b_total,
            "name": r.name or "",
            "tags": ", ".join(r.tags) + (" · imported" if r.imported else ""),
            "id": r.id,
        }
        for r in runs
    ],
    key="history_table",
    hide_index=True,
    column_order=columns or SHOWN_COLUMNS,
    column_config={"question": st.column_config.TextColumn(width="medium")},
    on_select="rerun",
    selection_mode="single-row",
)
rows = table.selection.rows if table is not None else []
# The id makes each label unique: the browser sends back the label picked, and two runs of
# one question in the same second would otherwise open the wrong one.
labels = {r.id: run_label(r, 60, with_id=True) for r in runs}
if rows:
    st.session_state["history_open"] = runs[rows[0]].id
if st.session_state.get("history_open") not in labels:
    st.session_state["history_open"] = runs[0].id
run_id = st.selectbox("Open run", list(labels), format_func=labels.get, key="history_open")
if run_id != from_link:
    st.session_state.pop("history_from_link", None)
# The URL names the run shown, so it can be shared or reloaded.
publish_run(run_id)
st.session_state["history_url"] = run_id

try:
    trace = load_trace(run_id)
except RunNotFound:
    st.error("That run was deleted meanwhile.")
    st.stop()
except TraceError as exc:
    st.error(inert(f"Cannot show this run: {exc}."))
    st.stop()

summary = next(r for r in runs if r.id == run_id)
with st.expander("Name, tags, export, delete"):
    # Keyed by the run: a form keyed alone would show run X's name on run Y and save it there.
    with st.form(run_key(run_id, "history_edit")):
        name = st.text_input("Name", value=summary.name or "",
                             key=run_key(run_id, "history_name"))
        tags = st.text_input("Tags (comma-separated)", value=", ".join(summary.tags),
                             key=run_key(run_id, "history_tags"))
        if st.form_submit_button("Save"):
            try:
                store.set_name(run_id, name.strip() or None, tuple(tags.split(",")))
            except RunNotFound:
                st.error("That run was deleted meanwhile: nothing saved.")
            else:
                st.rerun()
    downloads = st.container(horizontal=True)
    downloads.download_button("Download trace (JSON)", trace.to_json(), f"pdr-{run_id}.json",
                       mime="application/json", key="history_download_json")
    # The report is megabytes (plotly.js inline): built only when asked for.
    downloads.download_button("Download report (HTML, works offline)", lambda: render_report(trace),
                       f"pdr-{run_id}.html", mime="text/html", key="history_download_html")
    if st.session_state.get("history_confirm") == run_id:
        st.warning(f"Delete run {run_id} for good?")
        yes, no = st.columns(2)
        if yes.button("Yes, delete it", key="history_delete_yes", type="primary"):
            st.session_state.pop("history_confirm", None)
            try:
                store.delete_run(run_id)
            except StoreError as exc:
                st.error(str(exc))
            else:
                st.session_state.pop("history_open", None)
                st.rerun()
        if no.button("Keep it", key="history_delete_no"):
            st.session_state.pop("history_confirm", None)
            st.rerun()
    elif st.button("Delete run", key="history_delete"):
        st.session_state["history_confirm"] = run_id
        st.rerun()

if summary.name or summary.tags:
    # read afresh on every run of the page: a rename shows as soon as it is saved
    st.markdown(f"**Name:** {inert(summary.name or '—')}"
                + (f" · **Tags:** {inert(', '.join(summary.tags))}" if summary.tags else ""))
show_question(trace.question)
if trace.reference_answer is not None:
    st.caption(f"Reference answer: {inert(trace.reference_answer)}")
render_fork_comparison(trace)
resume_controls(trace, prefix="history")
cancel_control(run_id, prefix="history")
live_run_view(trace, prefix="history", link=True)
# A run listed as running that ends shows its end here without a reload.
watch_running([r.id for r in runs if r.status == "running" and r.id != run_id])
with st.expander("Copy link"):
    st.caption("This address opens this run, node and tab; copy it with the button on the "
               "right of the box.")
    # the address without its query, as the browser sees it (none in a headless test)
    here = (st.context.url or "").split("?")[0]
    st.code(f"{here}?" + urlencode(dict(st.query_params.items())), language=None)
    st.caption("For an audience: this run alone, its tree large, a scrubber through its "
               "time and no editing controls.")
    st.code(f"{here}?" + urlencode({"run": run_id, "present": 1}), language=None)
