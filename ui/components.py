"""Streamlit pieces the pages share: the store, the endpoint, the run view.

Pages stay thin: every computation here is a call into pdr_core; this module only lays
widgets out and keeps per-browser-session state in st.session_state.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from datetime import datetime

import plotly.graph_objects as go
import streamlit as st

from pdr_core.adaptive import savings
from pdr_core.diffs import diff_html, diff_stats, next_workspace, predecessor
from pdr_core.extraction import find_answer, no_answer_reason
from pdr_core.heap import freeze_startup_objects
from pdr_core.prompts import PromptSet
from pdr_core.providers import EndpointSettings
from pdr_core.replay import duration, trace_at
from pdr_core.scores import verify_flags
from pdr_core.selection import fell_back
from pdr_core.store import Store, StoreError, default_db_path
from pdr_core.tasks import answer_text, final_tests
from pdr_core.textfmt import inert, model_markdown
from pdr_core.trace import Node, Trace, gives_answer
from pdr_core.viz import answer_flow_figure, budget_table, timeline_figure, tree_figure
from pdr_core.workspace import workspace_flags, workspace_summary
from ui.baseline import render_baseline
from ui.code_view import code_diff_block, is_program, render_final_program, render_tests
from ui.endpoints import (  # noqa: F401  (pages import these from here)
    ENDPOINT,
    PROVIDER,
    endpoint,
    endpoint_or_stop,
    make_provider,
    run_endpoint,
    secret_key,
)
from ui.links import NODE_TABS, linked_tab, open_linked_node, publish
from ui.state import run_key

# Session-state keys that outlive the widgets of any one page.
JOBS = "jobs"
ACTIVE_RUN = "active_run"  # the run the Run page shows live
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
    A running run is always read afresh: the text of its calls in flight changes."""
    store = get_store()
    revision = store.revision(run_id)
    if revision[0] == "running":
        return store.get_trace(run_id)
    return _trace_at_revision(str(store.path), run_id, revision)


def chosen_prompts(key: str) -> PromptSet:
    """The prompt set picked in the selectbox `key` (the built-in one by default)."""
    name = st.session_state.get(key, BUILT_IN)
    return PromptSet() if name == BUILT_IN else get_store().prompt_set(name)


def run_async(coro):
    """Run a short coroutine (a connection check) from the script thread."""
    return asyncio.run(coro)


def short(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _seconds(node: Node) -> float | None:
    if not node.finished_at:
        return None
    start = datetime.fromisoformat(node.started_at)
    return (datetime.fromisoformat(node.finished_at) - start).total_seconds()


def elapsed(trace: Trace) -> float:
    start = datetime.fromisoformat(trace.created_at)
    end = datetime.fromisoformat(trace.finished_at) if trace.finished_at else None
    if end is None:
        return time.time() - start.timestamp()
    return (end - start).total_seconds()


def resume_controls(trace: Trace, prefix: str) -> None:
    """A Resume button for an interrupted or failed run; the resumed run shows live on the
    Run page."""
    if trace.status not in ("interrupted", "failed"):
        return
    done = sum(1 for n in trace.nodes if n.status == "ok" and n.call)
    st.info(f"This run is {trace.status}. Resume it: its {done} finished call(s) are kept, "
            "the rest is called again.")
    settings = run_endpoint(trace, run_key(trace.id, prefix, "resume_call"))
    if st.button("Resume", key=run_key(trace.id, prefix, "resume"), disabled=settings is None):
        from pdr_core.providers import ProviderError
        from pdr_core.runner import RunJob

        try:
            provider = make_provider(settings)
        except ProviderError as exc:
            st.error(f"Cannot use the endpoint: {exc}")
            return
        _start_job(RunJob.resuming(get_store(), trace, provider))


def render_header(trace: Trace, seconds: float | None = None) -> None:
    """Status, progress, tokens and time of a run, live or saved; `seconds` is the time
    shown when it is not the run's own (a replay shows how far it has played)."""
    config = trace.config
    budget = trace.budget
    planned = _planned_calls(config)
    cols = st.columns(5)
    cols[0].markdown(f"**Status**  \n{STATUS_BADGE.get(trace.status, trace.status)}")
    cols[1].metric("Calls", f"{budget.calls} / {planned}")
    cols[2].metric("B_total", f"{budget.b_total:,}")
    cols[3].metric("B_seq", f"{budget.b_seq:,}")
    cols[4].metric("Elapsed", f"{elapsed(trace) if seconds is None else seconds:.1f} s")
    if trace.status == "running":
        st.progress(min(budget.calls / max(planned, 1), 1.0))
    if trace.final_answer is not None or trace.status == "completed":
        verdict = {True: " · :green[**correct**]", False: " · :red[**incorrect**]",
                   None: ""}[trace.correct]
        # inert: a backtick in an answer would end a code span, and what follows (an image
        # that leaks to its host, a link) would be live
        shown = (inert(answer_text(trace.final_answer, final_tests(trace)))
                 if trace.final_answer is not None else "no answer")
        st.markdown(f"**Final answer:** {shown}{verdict}")
        render_final_program(trace)
        if fell_back(trace.final_selection):  # the model's choice was not used: say so
            st.warning(inert(f"Selected by {trace.final_selection}"))
        elif trace.final_selection:
            st.caption(inert(f"Selected by {trace.final_selection}"))
    if trace.stop_reason == "budget":
        st.warning("The run stopped on its total-token budget.")
    if (saved := savings(trace)) is not None:
        st.caption(saved.caption())
    if trace.error and trace.status != "completed":
        st.error(inert(trace.error))


def _planned_calls(config: dict) -> int:
    from pdr_core.config import ConfigError, RunConfig
    from pdr_core.prompts import TemplateError

    try:
        return RunConfig.from_dict(config).calls
    except (ConfigError, TemplateError, TypeError):  # an imported trace's odd settings
        schedule = config.get("width_schedule") or [1]
        return sum(schedule) if isinstance(schedule, list) else 1


REPLAY_SPEEDS = [1, 2, 5, 10, 20]


def render_replay(trace: Trace, prefix: str) -> None:
    """Play a saved run back as it happened: nodes appear in timeline order, text streams."""
    key = run_key(trace.id, prefix, "replay_started")
    with st.expander("Replay (demo mode: plays the saved run, no endpoint needed)"):
        c1, c2, c3 = st.columns([2, 1, 1])
        speed = c1.select_slider("Speed", REPLAY_SPEEDS, value=5,
                                 key=run_key(trace.id, prefix, "replay_speed"),
                                 format_func=lambda v: f"{v}×")
        if c2.button("Play", key=run_key(trace.id, prefix, "replay_play")):
            st.session_state[key] = time.time()
        if c3.button("Stop", key=run_key(trace.id, prefix, "replay_stop")):
            st.session_state.pop(key, None)
        started = st.session_state.get(key)
        if started is None:
            return
        total = duration(trace)

        @st.fragment(run_every=0.25)
        def frame() -> None:
            began = st.session_state.get(key)
            if began is None:
                return
            at = min((time.time() - began) * speed, total)
            past = trace_at(trace, at)
            st.progress(at / total if total else 1.0, text=f"{at:.1f} s of {total:.1f} s")
            render_header(past, seconds=at)
            st.plotly_chart(tree_figure(past), key=run_key(trace.id, prefix, "replay_tree"))
            for node in past.nodes:
                if node.status == "running":
                    st.caption(f"{inert(node.id)} · streaming")
                    st.text(node.text[-600:] or "…")
            if at >= total:
                st.session_state.pop(key, None)
                st.success("Replay finished.")

        frame()


def trace_revision(trace: Trace) -> str:
    """A key that changes whenever anything the run view's figures draw changes: the run's
    outcome and, per node, its status, times, answer and the length of its text."""
    parts = [trace.id, trace.created_at, trace.status, trace.finished_at, trace.final_answer,
             trace.reference_answer, trace.error]
    parts += [(n.id, n.status, n.started_at, n.finished_at, n.answer, len(n.text), n.error)
              for n in trace.nodes]
    return hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()


# cache_resource, not cache_data: cache_data pickles every hit, and unpickling a plotly
# figure validates it again (47 ms for a 120-node tree, against 10 ms to build it). The
# figures are shared read-only: st.plotly_chart copies a figure (to_dict) before sending it.
@st.cache_resource(max_entries=16, show_spinner=False)
def _cached_figures(run_id: str, revision: str, _trace: Trace
                    ) -> tuple[go.Figure, go.Figure, go.Figure]:
    return tree_figure(_trace), answer_flow_figure(_trace), timeline_figure(_trace)


def run_figures(trace: Trace) -> tuple[go.Figure, go.Figure, go.Figure]:
    """Tree, answer flow and timeline of `trace`; a settled run's are built once per
    revision, so selecting a node does not rebuild them. A running run's change on every
    refresh: caching those would only fill the cache."""
    if trace.status == "running":
        return tree_figure(trace), answer_flow_figure(trace), timeline_figure(trace)
    return _cached_figures(trace.id, trace_revision(trace), trace)


def render_run_view(trace: Trace, prefix: str = "view", link: bool = False) -> None:
    """The run view: tree, answer flow, timeline, budget, node detail and diffs. With
    `link`, the address names the node and tab shown (see ui.links)."""
    render_header(trace)
    if trace.status != "running" and trace.nodes:
        render_replay(trace, prefix)
    render_baseline(trace, prefix, get_store(), _start_job)
    ids = [n.id for n in trace.nodes]
    picker_key = run_key(trace.id, prefix, "node")
    tree_fig, flow_fig, timeline_fig = run_figures(trace)
    tree, flow, timeline, budget = st.tabs(["Tree", "Answer flow", "Timeline", "Budget"])
    with tree:
        # The figure does not depend on the selection: Streamlit drops clicks on a chart
        # whose figure changed since it was drawn, so a highlight ring would eat the next click.
        event = st.plotly_chart(
            tree_fig,
            key=run_key(trace.id, prefix, "tree"),
            on_select="rerun",
            selection_mode="points",
            config={"displaylogo": False},
        )
        clicked = _clicked_node(event)
        last_key = run_key(trace.id, prefix, "last_click")
        if clicked in ids and clicked != st.session_state.get(last_key):
            # A click on the tree selects the node, the picker below follows it.
            st.session_state[last_key] = clicked
            st.session_state[picker_key] = clicked
    with flow:
        st.plotly_chart(flow_fig, key=run_key(trace.id, prefix, "flow"))
    with timeline:
        st.plotly_chart(timeline_fig, key=run_key(trace.id, prefix, "timeline"))
    with budget:
        st.dataframe(budget_table(trace), hide_index=True,
                     key=run_key(trace.id, prefix, "budget"))
    if not ids:
        st.info("No node yet.")
        return
    # The picker starts on "latest": it follows the newest finished node while a run grows,
    # without the page setting the widget on every refresh (which races the browser).
    finished = [n.id for n in trace.nodes if n.status != "running"]
    latest = finished[-1] if finished else ids[0]
    if link:
        open_linked_node(picker_key, ids)
    if st.session_state.get(picker_key, LATEST) not in (LATEST, *ids):
        st.session_state[picker_key] = LATEST
    choice = st.selectbox(
        "Node",
        [LATEST, *ids],
        key=picker_key,
        format_func=lambda i: LATEST_LABEL if i == LATEST else _node_label(trace.node(i)),
        help="Click a node in the tree, or pick it here.",
    )
    node_id = latest if choice == LATEST else choice
    if choice == LATEST:
        st.caption(f"Showing {inert(_node_label(trace.node(node_id)))}")
    tab = render_node(trace, trace.node(node_id), prefix, link)
    if link:
        publish(None if choice == LATEST else choice, tab)


def _clicked_node(event) -> str | None:
    try:
        points = event.selection.points
    except AttributeError:
        return None
    for point in points or []:
        custom = point.get("customdata") if isinstance(point, dict) else None
        if isinstance(custom, (list, tuple)) and custom:
            custom = custom[0]
        if isinstance(custom, str):
            return custom
    return None


def _node_label(node: Node) -> str:
    state = {"ok": "", "failed": " · FAILED", "running": " · running"}[node.status]
    answer = f" · answer {node.answer}" if node.answer is not None else ""
    return f"{node.id} ({node.stage}, round {node.round}, branch {node.branch}){answer}{state}"


def render_node(trace: Trace, node: Node, prefix: str, link: bool = False) -> str | None:
    """Everything about one node: messages, output, usage, timing, diffs. Returns the
    label of the tab open, when the tabs follow the address (`link`)."""
    seconds = _seconds(node)
    usage = node.usage
    completion = int(usage.get("completion_tokens", 0))
    cols = st.columns(5)
    cols[0].metric("Answer", inert(answer_text(node.answer, node.tests))
                   if node.answer is not None else "—")
    cols[1].metric("Prompt tokens", f"{int(usage.get('prompt_tokens', 0)):,}")
    cols[2].metric("Completion tokens", f"{completion:,}")
    cols[3].metric("Seconds", f"{seconds:.2f}" if seconds is not None else "—")
    cols[4].metric("Tokens/s", f"{completion / seconds:.1f}" if seconds else "—")
    notes = []
    if usage.get("estimated"):
        notes.append("usage estimated: the endpoint reported none")
    if not node.call:
        notes.append("extractive workspace: no model call")
    if node.finish_reason == "length":
        notes.append("stopped at the max-tokens limit")
    if node.correct is not None:
        notes.append("correct" if node.correct else "incorrect")
    found = find_answer(node.text) if node.answer is not None else None
    if found is not None and found.answer == node.answer:
        notes.append(f"answer found by the rule “{found.rule}”")
    if notes:
        st.caption(" · ".join(notes))
    if node.stage == "distill" and node.status == "ok":
        st.caption(inert("Workspace: " + workspace_summary(node)))
        for flag in workspace_flags(node):
            if not flag.startswith("cut at kappa"):
                st.warning(inert(flag[:1].upper() + flag[1:] + "."))
    for flag in verify_flags(node):
        st.warning(inert(flag[:1].upper() + flag[1:] + "."))
    if node.status == "ok" and node.call and gives_answer(node.stage) and node.answer is None:
        st.warning(f"No answer: {no_answer_reason(node.text, node.finish_reason)}.")
    if node.status == "failed":
        st.error(inert(f"This call failed ({node.error_kind}): {node.error}"))
    if node.parent_ids:
        st.caption(inert("Conditioned on: " + ", ".join(node.parent_ids)))
    tab_key = run_key(trace.id, prefix, node.id, "tab")
    output, messages, diff, fork_tab = st.tabs(
        list(NODE_TABS.values()), key=tab_key, default=linked_tab() if link else None,
        on_change="rerun" if link else "ignore")
    with output:
        if node.status == "running":
            st.caption("streaming…")
        # st.markdown escapes raw HTML, so model text cannot inject markup or script.
        st.markdown(model_markdown(node.text) if node.text else "_(no text)_")
        render_tests(trace, node)
        if node.reasoning:
            with st.expander("Reasoning text"):
                st.markdown(model_markdown(node.reasoning))
    with messages:
        if not node.messages:
            st.caption("No messages: this workspace was assembled from the drafts it links to.")
        for message in node.messages:
            st.markdown(f"**{inert(message['role'])}**")
            st.code(message["content"], language=None, wrap_lines=True)
    with diff:
        render_diffs(trace, node, prefix)
    with fork_tab:
        if trace.status == "running" or node.status == "running":
            st.caption("Fork and playground open once the run has finished.")
        else:
            render_fork(trace, node, prefix)
    return st.session_state.get(tab_key) if link else None


def keep_job(job) -> bool:
    """Start a job and keep it in this session; False (the reason shown) when the store
    cannot take it."""
    try:
        job.start()
    except StoreError as exc:  # a damaged or read-only store: nothing was called
        st.error(str(exc))
        return False
    st.session_state.setdefault(JOBS, {})[job.run_id] = job
    return True


def _start_job(job) -> None:
    """Start a job, keep it in this session, and watch it live on the Run page."""
    if keep_job(job):
        st.session_state[ACTIVE_RUN] = job.run_id
        st.switch_page("pages/run.py")


def render_fork(trace: Trace, node: Node, prefix: str) -> None:
    """Fork the run at this node, or re-send its one call with edits (the playground)."""
    from pdr_core.config import ConfigError
    from pdr_core.methods import fork_config
    from pdr_core.prompts import TemplateError
    from pdr_core.providers import ProviderError
    from pdr_core.runner import RunJob

    # Keyed by run and node: a box keyed by the node alone would carry what it showed for
    # another run's node of the same id into this one.
    key = run_key(trace.id, prefix, node.id)
    settings = run_endpoint(trace, run_key(trace.id, prefix, "call"))
    edited = None
    if node.messages:
        edited = st.text_area("Last message (edit to change what this node is sent)",
                              node.messages[-1]["content"], height=160, key=f"{key}_message")
    st.markdown("**Fork here**: call this node again and everything that depended on it; "
                "every other node is reused from this run without a call.")
    sets = get_store().prompt_sets()
    c1, c2, c3, c4 = st.columns(4)
    own = "this run's own"
    prompt_set = c1.selectbox("Templates from here on", [own, BUILT_IN, *sets],
                              key=f"{key}_fork_prompts")
    width = c2.number_input("Width of later rounds (0 = same)", 0, 16, 0, key=f"{key}_width")
    depth = c3.number_input("Depth (0 = same)", 0, 8, 0, key=f"{key}_depth")
    max_tokens = c4.number_input("Max tokens (0 = same)", 0, 32768, 0, step=64,
                                 key=f"{key}_max_tokens")
    if st.button("Fork here", key=f"{key}_fork", type="primary", disabled=settings is None):
        messages = None
        if node.messages and edited != node.messages[-1]["content"]:
            messages = [dict(m) for m in node.messages]
            messages[-1]["content"] = edited
        try:
            prompts = None if prompt_set == own else (
                PromptSet() if prompt_set == BUILT_IN else get_store().prompt_set(prompt_set))
            config = fork_config(trace, node.id, width or None, depth or None,
                                 max_tokens or None, prompts)
            provider = make_provider(settings)
        except (ConfigError, TemplateError, ProviderError) as exc:
            st.error(f"Cannot fork: {exc}")
        else:
            _start_job(RunJob.forking(get_store(), trace, node.id, provider, config, messages))
    if node.messages:
        render_playground(trace, node, edited or "", key, settings)


def render_playground(trace: Trace, node: Node, edited: str, key: str,
                      settings: EndpointSettings | None) -> None:
    """Re-send this node's exact messages, with the edited last message and settings."""
    from pdr_core.forks import keep_call
    from pdr_core.providers import ProviderError, Sampling

    st.markdown("**Playground**: send this one call again and compare the output.")
    c1, c2, c3 = st.columns(3)
    temperature = c1.slider("Temperature", 0.0, 2.0,
                            float(trace.config.get("temperature", 0.8)), 0.1,
                            key=f"{key}_pg_temperature")
    default_tokens = int(trace.config.get("max_tokens", 1024))
    if node.stage == "distill":
        default_tokens = int(trace.config.get("distill_max_tokens") or default_tokens)
    max_tokens = c2.number_input("Max tokens", 1, 32768, default_tokens, key=f"{key}_pg_tokens")
    result_key = f"{key}_pg_result"
    if c3.button("Send", key=f"{key}_pg_send", disabled=settings is None):
        messages = [dict(m) for m in node.messages]
        messages[-1]["content"] = edited
        try:
            provider = make_provider(settings)
            completion = run_async(provider.complete(
                messages, Sampling(max_tokens=int(max_tokens), temperature=temperature)))
        except ProviderError as exc:
            st.error(f"The call failed: {exc}")
        else:
            st.session_state[result_key] = (messages, completion)
    result = st.session_state.get(result_key)
    if result is None:
        return
    messages, completion = result
    old, new = st.columns(2)
    old.caption("Before")
    old.markdown(model_markdown(node.text) or "_(no text)_")
    new.caption(f"After · {completion.usage.completion_tokens} tokens")
    new.markdown(model_markdown(completion.text) or "_(no text)_")
    _diff_block("Before → after", node.text, completion.text)
    if st.button("Keep as a fork of this one node", key=f"{key}_pg_keep"):
        child = keep_call(trace, node.id, messages, completion, get_store().writer())
        st.session_state.pop(result_key, None)
        st.success(f"Kept as run {child.id}"
                   + (" (interrupted after this node: resume it to call what follows)."
                      if child.status == "interrupted" else "."))


def render_fork_comparison(trace: Trace) -> None:
    """For a fork: what changed against its original run."""
    from pdr_core.forks import fork_comparison
    from pdr_core.store import RunNotFound

    if not trace.parent_run_id:
        return
    try:
        original = get_store().get_trace(trace.parent_run_id)
    except RunNotFound:
        st.caption(inert(f"Forked from run {trace.parent_run_id}, which is no longer stored."))
        return
    comparison = fork_comparison(original, trace)
    with st.expander(inert(f"Fork of run {original.id} at {trace.parent_node_id}"),
                     expanded=True):
        st.markdown(inert(comparison.verdict))
        st.caption(inert(f"Called again: {', '.join(comparison.changed) or 'none'} · reused "
                         f"{len(comparison.reused)} node(s)"
                         + (f" · not in the fork: {', '.join(comparison.dropped)}"
                            if comparison.dropped else "")))
        st.dataframe(
            [{"round": r.round,
              "original answers": ", ".join(f"{a} ×{c}" for a, c in r.original.items()),
              "fork answers": ", ".join(f"{a} ×{c}" for a, c in r.fork.items())}
             for r in comparison.rounds],
            hide_index=True, key=f"fork_rounds_{trace.id}",
        )


def render_diffs(trace: Trace, node: Node, prefix: str) -> None:
    before = predecessor(trace, node.id)
    after = next_workspace(trace, node.id) if node.stage == "distill" else None
    if before:
        _diff_nodes(trace, f"Against {before} (previous round)", trace.node(before), node)
    if after:
        _diff_nodes(trace, f"Against {after} (next round's workspace)", node,
                    trace.node(after))
    others = [n.id for n in trace.nodes if n.id != node.id]
    other = st.selectbox("Compare with another node", ["—"] + others,
                         key=run_key(trace.id, prefix, node.id, "diff_other"))
    if other != "—":
        _diff_nodes(trace, f"Against {other}", trace.node(other), node)
    elif not before and not after:
        st.caption("No predecessor: pick a node to compare with.")


def _diff_nodes(trace: Trace, title: str, old: Node, new: Node) -> None:
    """Two programs line by line; any other pair of texts word by word."""
    if is_program(trace, old) and is_program(trace, new):
        code_diff_block(title, old.answer or "", new.answer or "")
    else:
        _diff_block(title, old.text, new.text)


def _diff_block(title: str, old: str, new: str) -> None:
    added, removed = diff_stats(old, new)
    st.markdown(f"**{inert(title)}** · :green[+{added}] :red[−{removed}] words")
    st.html(diff_html(old, new))
