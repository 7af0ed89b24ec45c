"""Settings: the endpoint of this browser session, a connection test, slider defaults.

A typed API key lives only in this session's memory: it is never written to the store,
a trace or a file.
"""

from __future__ import annotations

import hashlib

import streamlit as st

from pdr_core.providers import (
    DEFAULT_OPENAI_URL,
    EndpointRequest,
    EndpointSettings,
    ProviderError,
    check_endpoint,
    choose_endpoint,
    endpoint_locked,
    key_home,
)
from pdr_core.providers.routes import parse_routes
from pdr_core.render.textfmt import inert
from pdr_core.run.preview import known_price
from pdr_core.user_settings import UserSettings, save_settings
from ui.code_view import render_execution_toggle
from ui.components import run_async
from ui.endpoints import ENDPOINT, app_environ, given, show_local_model
from ui.knobs import DEPTH_RANGE, TOKEN_STEPS, WIDTH_RANGE, knob_default
from ui.navigation import through_app
from ui.state import DEFAULTS, MOA_PROPOSERS, SAVED_ERROR, forget, kept, kept_value

through_app()

LOCAL, REMOTE = "Bundled local model", "OpenAI-compatible endpoint"
CHECK = "connection_check"  # (what was tested, ok, message): kept until the fields change

st.title("Settings")
locked = endpoint_locked()
environ = app_environ()
current = given()
if current == EndpointSettings():  # nothing given here yet (or locked): the environment's
    try:
        current = choose_endpoint(EndpointRequest(), environ)
    except ProviderError as exc:
        st.error(f"The server's environment names an unusable endpoint: {exc}")
if locked:
    st.info("This deployment fixed the endpoint (PDR_LOCK_ENDPOINT): it cannot be changed "
            "here.")

mode = st.radio("Endpoint", [LOCAL, REMOTE], horizontal=True, disabled=locked,
                **kept("endpoint_mode", LOCAL if current.uses_local else REMOTE))
if mode == LOCAL:
    show_local_model(locked, current.local_model)
else:
    base_url = st.text_input("Base URL", disabled=locked,
                             **kept("base_url", current.base_url or ""),
                             placeholder="http://localhost:11434/v1 (Ollama), "
                                         "http://localhost:8000/v1 (vLLM), "
                                         f"{DEFAULT_OPENAI_URL}")
    typed = st.text_input(
        "API key", type="password", disabled=locked, **kept("api_key"),
        help="Held only in this browser session's memory, never stored. It goes only to "
             "the base URL above.",
    )
    if environ.get("OPENAI_API_KEY"):
        try:
            st.caption(f"The server's OPENAI_API_KEY goes only to {key_home(environ)}; for "
                       "any other base URL, type its key here.")
        except ProviderError:
            pass  # an unusable OPENAI_BASE_URL: said at the top of the page
    models = st.session_state.get("served_models", [])
    if models:
        model = st.selectbox("Model", models, disabled=locked, **kept("model_pick"))
    else:
        model = st.text_input("Model", disabled=locked,
                              **kept("model_name", current.model or ""),
                              help="Test the connection to fill a picker from /v1/models.")
    given_now = EndpointSettings(base_url=base_url.strip() or None, api_key=typed or None,
                                 model=model or None)
    # Applied at once, before anything slow: leaving the page keeps what was typed.
    st.session_state[ENDPOINT] = given_now
    try:
        settings = choose_endpoint(EndpointRequest(
            base_url=given_now.base_url, model=given_now.model, api_key=given_now.api_key),
            environ) if not locked else choose_endpoint(EndpointRequest(), environ)
    except ProviderError as exc:
        settings = None
        st.error(inert(str(exc)))
    else:
        st.caption(inert(f"Calls {settings.describe()}"))
        if not settings.model:
            st.warning("Name a model: the endpoint's /v1/models lists what it serves.")
    tested = hashlib.sha256(repr((settings and settings.base_url, settings and settings.model,
                                  settings and settings.api_key)).encode()).hexdigest()
    st.caption("Test connection lists the served models and, with a model named, makes one "
               "call of one output token: it proves the key works, and costs that call.")
    if st.button("Test connection", key="test_connection",
                 disabled=settings is None or settings.uses_local):
        try:
            check = run_async(check_endpoint(settings))
        except ProviderError as exc:
            st.session_state[CHECK] = (tested, False, str(exc))
        else:
            message = check.message
            price = known_price(settings.model or "") if check.usage else None
            if price:
                dollars = (check.usage.prompt_tokens * price[0]
                           + check.usage.completion_tokens * price[1]) / 1e6
                message += f" About ${dollars:.6f} at list price."
            st.session_state[CHECK] = (tested, check.ok, message)
            if check.models and not models:
                st.session_state["served_models"] = list(check.models)
                st.rerun()  # the model picker replaces the text box; the result stays
    result = st.session_state.get(CHECK)
    if result is not None and result[0] == tested:
        (st.success if result[1] else st.error)(inert(result[2]))

st.divider()
st.subheader("Defaults for the Run page")
defaults = st.session_state.setdefault(DEFAULTS, {})
d1, d2, d3 = st.columns(3)
defaults["width"] = d1.slider("Width", *WIDTH_RANGE, knob_default("width"),
                              key="default_width")
defaults["depth"] = d2.slider("Depth", *DEPTH_RANGE, knob_default("depth"),
                              key="default_depth")
defaults["max_tokens"] = d3.select_slider("Max tokens per call", TOKEN_STEPS,
                                          knob_default("max_tokens"),
                                          key="default_max_tokens")

st.divider()
st.subheader("Mixture of agents")
proposers = st.text_input(
    "Proposers (MODEL@URL or MODEL, comma-separated)",
    **kept(MOA_PROPOSERS, "", then=lambda: forget("method_setting_proposers")),
    placeholder="llama3@http://localhost:11434/v1, qwen3@http://localhost:8000/v1",
    help="The Run page's default for moa: one proposer per entry, on its own endpoint "
         "(MODEL@URL) or the run's (MODEL). The key above goes only to the base URL above; "
         "another proposer's endpoint gets OPENAI_API_KEY only when it is OPENAI_BASE_URL, "
         "no key on this machine or its network, and is refused otherwise.").strip()
try:
    parse_routes(proposers)
except ValueError as exc:
    proposers = None
    st.error(inert(f"Proposers: {exc}"))

st.divider()
render_execution_toggle()

st.divider()
if st.session_state.get(SAVED_ERROR):
    st.warning(inert(f"Your saved settings were not used: {st.session_state[SAVED_ERROR]}"))
if st.button("Save these settings for new sessions", key="save_settings",
             help="The endpoint's URL and model and the defaults above, in your config "
                  "folder. Never the API key."):
    model = kept_value("model_pick") if st.session_state.get("served_models") else None
    try:
        path = save_settings(UserSettings(
            local=mode == LOCAL, base_url=(kept_value("base_url") or "").strip() or None,
            model=model or (kept_value("model_name") or "").strip() or None,
            defaults=dict(defaults),
            local_model=(kept_value("local_model_path") or "").strip() or None,
            proposers=proposers or None))
    except OSError as exc:
        st.error(f"Not saved: {exc}")
    else:
        st.success(f"Saved to {path} (without the API key).")
