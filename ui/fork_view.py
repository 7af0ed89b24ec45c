"""Continuing a stored run: resume it, fork it at a node, or re-send one call."""

from __future__ import annotations

import streamlit as st

from pdr_core.config import RunConfig
from pdr_core.prompts import PromptSet
from pdr_core.providers import EndpointSettings
from pdr_core.render.textfmt import inert, model_markdown
from pdr_core.trace import Node, Trace
from ui.components import (
    BUILT_IN,
    get_store,
    make_provider,
    run_async,
    run_endpoint,
    start_and_watch,
)
from ui.diff_view import diff_block
from ui.endpoints import app_environ
from ui.state import run_key


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
        from pdr_core.run.jobs import RunJob

        try:
            provider = make_provider(settings)
        except ProviderError as exc:
            st.error(f"Cannot use the endpoint: {exc}")
            return
        start_and_watch(RunJob.resuming(get_store(), trace, provider, app_environ()))


def render_fork(trace: Trace, node: Node, prefix: str) -> None:
    """Fork the run at this node, or re-send its one call with edits (the playground)."""
    from pdr_core.config import ConfigError
    from pdr_core.prompts import TemplateError
    from pdr_core.providers import ProviderError
    from pdr_core.run.jobs import RunJob
    from pdr_core.run.methods import fork_config

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
            start_and_watch(RunJob.forking(get_store(), trace, node.id, provider, config,
                                           messages, app_environ()))
    if node.messages:
        render_playground(trace, node, edited or "", key, settings)


def render_playground(trace: Trace, node: Node, edited: str, key: str,
                      settings: EndpointSettings | None) -> None:
    """Re-send this node's exact messages, with the edited last message and settings."""
    from pdr_core.providers import ProviderError, Sampling
    from pdr_core.providers.routes import Routes
    from pdr_core.run.forks import call_provider, keep_call

    st.markdown("**Playground**: send this one call again and compare the output.")
    c1, c2, c3 = st.columns(3)
    # The run's own settings; the defaults where they are not a run this version makes.
    config = trace.known_config or RunConfig()
    temperature = c1.slider("Temperature", 0.0, 2.0, float(config.temperature), 0.1,
                            key=f"{key}_pg_temperature")
    default_tokens = config.distill_budget if node.stage == "distill" else config.max_tokens
    max_tokens = c2.number_input("Max tokens", 1, 32768, default_tokens, key=f"{key}_pg_tokens")
    result_key = f"{key}_pg_result"
    if c3.button("Send", key=f"{key}_pg_send", disabled=settings is None):
        messages = [dict(m) for m in node.messages]
        messages[-1]["content"] = edited
        try:
            # A routed node (moa) calls its own recorded model and endpoint.
            routes = Routes(make_provider(settings), app_environ(), get_store())
            provider = call_provider(node, routes)
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
    diff_block("Before → after", node.text, completion.text)
    if st.button("Keep as a fork of this one node", key=f"{key}_pg_keep"):
        child = keep_call(trace, node.id, messages, completion, get_store().writer())
        st.session_state.pop(result_key, None)
        st.success(f"Kept as run {child.id}"
                   + (" (interrupted after this node: resume it to call what follows)."
                      if child.status == "interrupted" else "."))


def render_fork_comparison(trace: Trace) -> None:
    """For a fork: what changed against its original run."""
    from pdr_core.run.forks import fork_comparison
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
