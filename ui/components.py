"""Streamlit pieces the pages share: the store, loaded runs, the endpoint, labels.

Pages stay thin: every computation here is a call into pdr_core; the views are in
ui.run_view (a run), ui.node_view (one node), ui.fork_view (resume, fork, playground) and
ui.diff_view (diffs).
"""

from __future__ import annotations

import asyncio

import streamlit as st

from pdr_core.heap import freeze_startup_objects
from pdr_core.prompts import PromptSet
from pdr_core.render.textfmt import inert, model_markdown
from pdr_core.run.jobs import JobRegistry, RunJob
from pdr_core.run.registry import shape_label
from pdr_core.store import LiveFold, RunSummary, Store, StoreError, default_db_path
from pdr_core.trace import Trace
from ui.endpoints import (  # noqa: F401  (pages import these from here)
    ENDPOINT,
    PROVIDER,
    endpoint,
    endpoint_or_stop,
    make_provider,
    run_endpoint,
    secret_key,
)

# Session-state keys that outlive the widgets of any one page.
ACTIVE_RUN = "active_run"  # the run the Run page shows live
LIVE_FOLDS = "live_folds"  # (store, run id) -> the fold of a running run, read so far
KEPT_LIVE_FOLDS = 4  # a session follows a few running runs at once, not more
BUILT_IN = "built-in defaults"  # the prompt set that is not stored
LATEST = ""  # the node picker's "follow the newest node" choice
# A fixed label: a label that changes under a mounted widget is not redrawn reliably.
LATEST_LABEL = "Latest finished node (follows a live run)"

STATUS_BADGE = {
    "running": ":blue[● running]",
    "completed": ":green[● completed]",
    "failed": ":red[● failed]",
    "interrupted": ":orange[● interrupted]",
}


@st.cache_resource(show_spinner=False)
def settle_process() -> bool:
    """Once per server process, after the first script run has imported everything: see
    `freeze_startup_objects` (evaluations run hundreds of runs in this process)."""
    freeze_startup_objects()
    return True


@st.cache_resource(show_spinner=False)
def jobs() -> JobRegistry:
    """The runs this server process runs: every session and page finds a run here, so a
    reloaded tab or History reattaches to it and can cancel it."""
    return JobRegistry()


def start_job(job: RunJob) -> bool:
    """Start `job` where every page finds it; False, with the reason on the page, when the
    store cannot be written (nothing was called)."""
    try:
        jobs().start(job)
    except StoreError as exc:
        st.error(str(exc))
        return False
    return True


def start_and_watch(job: RunJob) -> None:
    """Start `job` and watch it live on the Run page."""
    if start_job(job):
        st.session_state[ACTIVE_RUN] = job.run_id
        st.switch_page("pages/run.py", query_params={"run": job.run_id})


@st.cache_resource
def _store_at(path: str) -> Store:
    return Store(path)


def get_store() -> Store:
    """The run store; a page stops with one line saying what to do when it cannot be
    opened (damaged, not a store, unreadable)."""
    try:
        return _store_at(str(default_db_path()))
    except StoreError as exc:
        st.error(str(exc))
        st.stop()
        raise  # st.stop() ends the script run; never reached


# Traces are shared read-only between reruns and sessions; nothing on a page changes one.
@st.cache_resource(max_entries=32, show_spinner=False)
def _trace_at_revision(path: str, run_id: str, revision: tuple[str, str, int]) -> Trace:
    return _store_at(path).get_trace(run_id)


def load_trace(run_id: str) -> Trace:
    """A stored run, read again only when it changed (selecting a node reloads nothing).
    A running run is read at every poll (the text of its calls in flight changes), and
    folded on from where this session's last read left it (`LIVE_FOLDS`)."""
    store = get_store()
    revision = store.revision(run_id)
    live: dict[tuple[str, str], LiveFold] = st.session_state.setdefault(LIVE_FOLDS, {})
    key = (str(store.path), run_id)
    if revision[0] == "running":
        kept = live.setdefault(key, LiveFold())
        for stale in list(live)[:-KEPT_LIVE_FOLDS]:  # runs no longer looked at, oldest first
            if stale != key:
                del live[stale]
        return store.get_trace(run_id, kept)
    live.pop(key, None)
    return _trace_at_revision(str(store.path), run_id, revision)


def chosen_prompts(key: str) -> PromptSet:
    """The prompt set picked in the selectbox `key` (the built-in one by default)."""
    name = st.session_state.get(key, BUILT_IN)
    return PromptSet() if name == BUILT_IN else get_store().prompt_set(name)


def run_async(coro):
    """Run a short coroutine (a connection check) from the script thread."""
    return asyncio.run(coro)


def metric_row(metrics: list[tuple[str, object]], lead: str | None = None) -> None:
    """Metrics side by side, each as wide as its label and value: on a narrow page they
    wrap onto another row instead of being cut. `lead` (markdown) comes first."""
    with st.container(horizontal=True, gap="medium"):
        if lead is not None:
            st.markdown(lead, width="content")
        for label, value in metrics:
            st.metric(label, value, width="content")


QUESTION_FOLD = 300  # characters of a question shown before "show all"


def show_question(text: str) -> None:
    """A run's question above its view; a long one folded to its start, whole on demand."""
    flat = " ".join(text.split())
    if len(flat) <= QUESTION_FOLD:
        st.markdown(f"**Question:** {model_markdown(text)}")
        return
    st.markdown(f"**Question:** {inert(flat[:QUESTION_FOLD])}…")
    with st.expander(f"Show the whole question ({len(flat):,} characters)"):
        st.markdown(model_markdown(text))


def short(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def run_label(run: RunSummary, limit: int = 60, with_id: bool = False) -> str:
    """A run picker's entry: when, method (distill, width×depth), status, name or question
    (and the id, which keeps labels of runs made in the same second apart)."""
    label = (f"{run.created_at[:19].replace('T', ' ')} · {shape_label(run.config)} · "
             f"{run.status} · {short(run.name or run.question, limit)}")
    return f"{label} · {run.id}" if with_id else label
