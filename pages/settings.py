"""Settings: the endpoint of this browser session, a connection test, slider defaults.

A typed API key lives only in this session's memory: it is never written to the store,
a trace or a file.
"""

from __future__ import annotations

import os

import streamlit as st

from pdr_core.providers import EndpointSettings, ProviderError, check_base_url
from pdr_core.user_settings import UserSettings, save_settings
from ui.components import ENDPOINT, endpoint, run_async, secret_key
from ui.state import SAVED_ERROR, kept, kept_value

LOCAL, REMOTE = "Bundled local model", "OpenAI-compatible endpoint"

st.title("Settings")
current = endpoint()
mode = st.radio("Endpoint", [LOCAL, REMOTE], horizontal=True,
                **kept("endpoint_mode", LOCAL if current.uses_local else REMOTE))
if mode == LOCAL:
    st.info("SmolLM2-135M-Instruct runs in-process with llama.cpp: a small demo model, quick "
            "and not clever. Use an endpoint for real reasoning.")
    st.session_state[ENDPOINT] = EndpointSettings(local=True)
else:
    base_url = st.text_input("Base URL", **kept("base_url", current.base_url or ""),
                             placeholder="http://localhost:11434/v1 (Ollama), "
                                         "http://localhost:8000/v1 (vLLM), "
                                         "https://api.openai.com/v1")
    env_key = os.environ.get("OPENAI_API_KEY") or secret_key()
    typed = st.text_input(
        "API key", type="password", **kept("api_key"),
        help="Held only in this browser session's memory, never stored. Leave empty to use "
             "OPENAI_API_KEY from the environment or Streamlit secrets.",
    )
    if env_key and not typed:
        st.caption("Using the API key from the environment / secrets.")
    models = st.session_state.get("served_models", [])
    if models:
        model = st.selectbox("Model", models, **kept("model_pick"))
    else:
        model = st.text_input("Model", **kept("model_name", current.model or ""),
                              help="Test the connection to fill a picker from /v1/models.")
    settings = EndpointSettings(base_url=base_url.strip() or None,
                                api_key=typed or env_key or None, model=model or None)
    valid = False
    try:
        if settings.base_url:
            check_base_url(settings.base_url)
        valid = True
    except ProviderError as exc:
        st.error(str(exc))
    else:
        # Applied at once, before anything slow: leaving the page keeps what was typed.
        st.session_state[ENDPOINT] = settings
    if not settings.model:
        st.warning("Name a model: the endpoint's /v1/models lists what it serves.")
    if st.button("Test connection", key="test_connection", disabled=not valid):
        from pdr_core.providers.openai_compat import OpenAIProvider

        try:
            provider = OpenAIProvider(settings.base_url, settings.api_key or "not-needed",
                                      settings.model or "", timeout=10, max_retries=0)
            check = run_async(provider.check_connection())
        except ProviderError as exc:
            st.error(str(exc))
        else:
            if check.models:
                st.session_state["served_models"] = list(check.models)
            (st.success if check.ok else st.error)(check.message)
            if check.models and not models:
                st.rerun()

st.divider()
st.subheader("Defaults for the Run page")
defaults = st.session_state.setdefault("slider_defaults", {})
d1, d2, d3 = st.columns(3)
defaults["width"] = d1.slider("Width", 1, 16, defaults.get("width", 4), key="default_width")
defaults["depth"] = d2.slider("Depth", 1, 8, defaults.get("depth", 2), key="default_depth")
defaults["max_tokens"] = d3.select_slider(
    "Max tokens per call", [64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768],
    defaults.get("max_tokens", 1024), key="default_max_tokens")

st.divider()
if st.session_state.get(SAVED_ERROR):
    st.warning(f"Your saved settings were not used: {st.session_state[SAVED_ERROR]}")
if st.button("Save these settings for new sessions", key="save_settings",
             help="The endpoint's URL and model and the defaults above, in your config "
                  "folder. Never the API key."):
    model = kept_value("model_pick") if st.session_state.get("served_models") else None
    try:
        path = save_settings(UserSettings(
            local=mode == LOCAL, base_url=(kept_value("base_url") or "").strip() or None,
            model=model or (kept_value("model_name") or "").strip() or None,
            defaults=dict(defaults)))
    except OSError as exc:
        st.error(f"Not saved: {exc}")
    else:
        st.success(f"Saved to {path} (without the API key).")
