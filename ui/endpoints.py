"""Which endpoint a page calls: this session's for new runs, a run's own for its resume,
fork and playground. Every choice is `pdr_core.providers.choose_endpoint`'s; this module
only gathers what the session gave and asks before a key goes to a recorded host.
"""

from __future__ import annotations

import os
from dataclasses import replace

import streamlit as st

from pdr_core.providers import (
    EndpointRequest,
    EndpointSettings,
    Provider,
    ProviderError,
    UntrustedEndpoint,
    choose_endpoint,
    endpoint_locked,
)
from pdr_core.providers.local.files import LOCAL_MODEL_ENV, model_file
from pdr_core.render.textfmt import inert
from pdr_core.trace import Trace
from ui.state import SAVED, kept

# Session-state keys that outlive the widgets of any one page.
ENDPOINT = "endpoint_settings"  # what the Settings page was given (EndpointSettings)
PROVIDER = "provider"  # an injected Provider (tests use the fake one)
OWN, SESSION = "This run's own endpoint", "This session's endpoint"


def secret_key() -> str | None:
    """An API key from Streamlit secrets, if the deployment has one."""
    try:
        return st.secrets.get("OPENAI_API_KEY")
    except FileNotFoundError:
        return None


def app_environ() -> dict[str, str]:
    """The environment the rule reads: the process's, with a key from Streamlit secrets
    standing in for OPENAI_API_KEY when that is unset."""
    environ = dict(os.environ)
    if not environ.get("OPENAI_API_KEY") and (key := secret_key()):
        environ["OPENAI_API_KEY"] = key
    return environ


def given() -> EndpointSettings:
    """What this session gave on the Settings page, else what was saved for new sessions
    (never a key); nothing when the deployment locked the endpoint (PDR_LOCK_ENDPOINT)."""
    if endpoint_locked():
        return EndpointSettings()
    chosen = st.session_state.get(ENDPOINT)
    if chosen is not None:
        return chosen
    saved = st.session_state.get(SAVED)
    if saved is None:
        return EndpointSettings()
    return EndpointSettings(base_url=saved.base_url, model=saved.model,
                            local=saved.local,
                            local_model=saved.local_model)


def endpoint() -> EndpointSettings:
    """This session's endpoint for new runs (ProviderError when it cannot be used)."""
    return choose_endpoint(EndpointRequest(**_given_fields(given())), app_environ())


def endpoint_or_stop() -> EndpointSettings:
    """This session's endpoint, said on the page; the page stops with what to fix when it
    cannot be used."""
    try:
        settings = endpoint()
    except ProviderError as exc:
        st.error(inert(f"Cannot use the endpoint: {exc}. Fix it on the Settings page."))
        st.stop()
    if st.session_state.get(PROVIDER) is None:
        st.caption(inert(f"Calls {settings.describe()}"))
    return settings


def make_provider(settings: EndpointSettings) -> Provider:
    """A fresh provider for one run, or the one injected into this session."""
    injected = st.session_state.get(PROVIDER)
    if injected is not None:
        return injected
    from pdr_core.providers import resolve_provider
    from ui.components import get_store  # imported here: components imports this module

    # The store remembers what the endpoint does (does it honour n?) across runs.
    return resolve_provider(settings, memory=get_store())


def run_endpoint(trace: Trace, key: str) -> EndpointSettings | None:
    """The endpoint a resume, fork or playground call of `trace` uses, shown on the page:
    the run's own unless the user picks this session's, and a configured key goes to a
    recorded host only once the user confirmed that host. None: nothing can be called."""
    if st.session_state.get(PROVIDER) is not None:
        st.caption("Calls the provider injected into this session.")
        return EndpointSettings()
    pick = st.radio("Endpoint to call", [OWN, SESSION], key=f"{key}_endpoint",
                    horizontal=True,
                    help="A run continues on the endpoint and model it was made with, "
                         "unless you pick this session's (the Settings page's).")
    session = given()
    if pick == OWN:
        # No model given: the run's own. The session's URL still says whose its key is.
        request = EndpointRequest.for_run(trace.config, base_url=session.base_url,
                                          api_key=session.api_key)
    else:
        request = EndpointRequest.for_run(trace.config, use_recorded=False,
                                          **_given_fields(session))
    try:
        return _shown(choose_endpoint(request, app_environ()))
    except UntrustedEndpoint as exc:
        if endpoint_locked():
            st.error(inert(f"{exc}. This deployment does not send its key elsewhere."))
            return None
        host = inert(exc.host)  # the host comes from the run, perhaps an imported one
        st.warning(f"This run was made on **{host}**, which is not your configured "
                   f"endpoint: calling it with your configured API key hands that key to "
                   f"{host}. Confirm only if you trust {host}.")
        if not st.checkbox(f"Send my API key to {exc.host}", key=f"{key}_trust"):
            return None
        trusted = replace(request, trust_recorded=True)
        return _shown(choose_endpoint(trusted, app_environ()))
    except ProviderError as exc:
        st.error(inert(f"Cannot call an endpoint: {exc}"))
        return None


def _given_fields(settings: EndpointSettings) -> dict:
    return {"base_url": settings.base_url, "model": settings.model,
            "api_key": settings.api_key, "local": settings.local,
            "local_model": settings.local_model}


def on_bundled_model(settings: EndpointSettings) -> bool:
    """Whether calls go to the bundled SmolLM2 (not another GGUF file, not an endpoint)."""
    return settings.uses_local and not (settings.local_model
                                        or app_environ().get(LOCAL_MODEL_ENV))


def show_local_model(locked: bool, current: str | None) -> None:
    """The Settings page's local model: the bundled one, or a GGUF chat model file on the
    machine that serves the app (checked here, before any run)."""
    path = st.text_input(
        "GGUF model file (optional)", disabled=locked,
        **kept("local_model_path", current or ""),
        placeholder="empty: the bundled SmolLM2-135M-Instruct",
        help="The path of a GGUF chat model on the machine that serves this app (a Qwen or "
             "Llama GGUF downloaded elsewhere); it runs in a worker process with llama.cpp.",
    ).strip()
    try:
        chosen = model_file(path or None, app_environ())
    except ProviderError as exc:
        st.error(inert(f"{exc}"))
        return
    if chosen.bundled:
        st.info("SmolLM2-135M-Instruct runs on this machine with llama.cpp: a small demo "
                "model, quick and not clever. Use an endpoint for real reasoning.")
    else:
        st.info(inert(f"{chosen.name} from {chosen.path} runs on this machine with "
                      "llama.cpp."))
    st.session_state[ENDPOINT] = EndpointSettings(local=True, local_model=path or None)


def _shown(settings: EndpointSettings) -> EndpointSettings:
    st.caption(inert(f"Calls {settings.describe()}"))
    return settings
