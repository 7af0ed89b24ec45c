"""Which endpoint, model and key a call uses: the one rule of the command line and the app.

A key belongs to an endpoint. The rule, first match wins:

Endpoint
  1. the run's recorded endpoint, when the call continues a run (resume, fork, playground)
     and no endpoint was given for it (`--base-url`, `--local`, the app's override);
     a recorded `local` is the bundled model, `local:PATH` that GGUF file;
  2. the bundled model when asked for (`--local`, the Settings page);
  3. the endpoint given (`--base-url`, the Settings page's base URL);
  4. OPENAI_BASE_URL;
  5. OpenAI's API when a key is configured, else the bundled model.
Model
  the model given (`--model`, Settings); else the run's recorded model when the recorded
  endpoint is called; else PDR_MODEL; else the recorded model.
Key
  1. the key given for the endpoint (typed on Settings, `--api-key-env`), which belongs to
     the endpoint given, or to OPENAI_BASE_URL (OpenAI's API when unset) when none was given;
  2. OPENAI_API_KEY, which belongs to OPENAI_BASE_URL (OpenAI's API when unset) only;
  3. on a recorded endpoint that owns neither key: the configured key (1, else 2) only when
     the user trusted that endpoint (`--trust-recorded-endpoint`, a confirmation in the app
     naming its host), else no key on this machine or its network, else refused;
  4. any other endpoint: no key on this machine or its network, else refused.

So an imported trace, or a run made elsewhere, never takes a configured key to its
recorded endpoint without the user's say-so, and a base URL typed in a browser never
receives the environment's key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from pdr_core.providers.base import DEFAULT_OPENAI_URL, ProviderError, check_base_url

LOCAL = "local"  # the recorded base_url of a run on the bundled model ("local:PATH": a file)
LOCK_VARIABLE = "PDR_LOCK_ENDPOINT"


class UntrustedEndpoint(ProviderError):
    """A run's recorded endpoint would need the configured key, and the user has not
    trusted it; `host` names it for a confirmation."""

    def __init__(self, message: str, host: str):
        super().__init__(message, kind="auth")
        self.host = host


@dataclass(frozen=True)
class EndpointRequest:
    """What a caller knows: what was given (flags or the Settings page) and the run's own."""

    base_url: str | None = None  # given: --base-url, the Settings page
    model: str | None = None  # given: --model, the Settings page
    api_key: str | None = field(default=None, repr=False)  # a key given for base_url
    local: bool = False  # given: --local, the Settings page
    local_model: str | None = None  # the GGUF file given for it (else PDR_LOCAL_MODEL, bundled)
    timeout: str | None = None  # given: --timeout (else PDR_TIMEOUT)
    max_retries: str | None = None  # given: --max-retries (else PDR_MAX_RETRIES)
    recorded_url: str | None = None  # the run's config base_url (resume, fork, playground)
    recorded_model: str | None = None
    use_recorded: bool = True  # False: the given endpoint replaces the recorded one
    trust_recorded: bool = False  # the configured key may go to the recorded endpoint

    @classmethod
    def for_run(cls, config: Mapping, **given) -> EndpointRequest:
        """A request that continues the run whose config is `config`."""
        return cls(recorded_url=config.get("base_url") or None,
                   recorded_model=config.get("model") or None, **given)


@dataclass(frozen=True)
class EndpointSettings:
    """The endpoint, model and key calls use. Never printed whole: it may hold a key."""

    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    model: str | None = None
    local: bool = False
    # A GGUF file for the local model; None: $PDR_LOCAL_MODEL, else the bundled model.
    local_model: str | None = None
    # PDR_MAX_IN_FLIGHT as given (requests open at once per event loop); resolve_provider
    # checks it, where every other setting is checked.
    max_in_flight: str | None = None
    # Seconds one try of a call may take, and tries after the first (--timeout and
    # --max-retries, else PDR_TIMEOUT and PDR_MAX_RETRIES), as given; checked likewise.
    timeout: str | None = None
    max_retries: str | None = None
    key_source: str = ""  # in words: whose key, or why none
    recorded: bool = False  # the run's recorded endpoint is called

    @property
    def uses_local(self) -> bool:
        """No endpoint and no key configured: the bundled local model."""
        return self.local or not (self.base_url or self.api_key)

    def describe(self) -> str:
        """One line for a page or a terminal: where calls go, which model, which key."""
        if self.uses_local:
            return f"the local model {self.local_model}" if self.local_model else \
                "the bundled local model"
        where = "the run's recorded endpoint " if self.recorded else ""
        return (f"{where}{self.base_url} · model {self.model or '(none named)'} · key: "
                f"{self.key_source or 'none'}")


def endpoint_locked(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the deployment fixed the endpoint (PDR_LOCK_ENDPOINT=1): the app's visitors
    then neither change it nor trust a recorded endpoint with its key."""
    env = os.environ if environ is None else environ
    return env.get(LOCK_VARIABLE, "").strip().lower() in ("1", "true", "yes")


def _is_local(url: str) -> bool:
    return url == LOCAL or url.startswith(LOCAL + ":")


def same_endpoint(a: str | None, b: str | None) -> bool:
    """Whether two base URLs name the same endpoint (scheme and host case, trailing slash
    and default port aside)."""
    return a is not None and b is not None and _canonical(a) == _canonical(b)


def host_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc.rsplit("@", 1)[-1] or url


def choose_endpoint(request: EndpointRequest,
                    environ: Mapping[str, str] | None = None) -> EndpointSettings:
    """The endpoint, model and key for `request` under the rule of this module's docstring,
    with the call limits given, else the environment's (PDR_TIMEOUT, PDR_MAX_RETRIES).
    Raises ProviderError (UntrustedEndpoint for a recorded endpoint awaiting trust)."""
    env = os.environ if environ is None else environ
    return replace(_choose(request, env),
                   timeout=_given(request.timeout, env.get("PDR_TIMEOUT")),
                   max_retries=_given(request.max_retries, env.get("PDR_MAX_RETRIES")))


def _given(flag: str | None, variable: str | None) -> str | None:
    """A flag beats its environment variable (resolve_provider checks the value)."""
    return flag if flag is not None else variable or None


def key_home(environ: Mapping[str, str] | None = None) -> str:
    """Where OPENAI_API_KEY belongs: OPENAI_BASE_URL, else OpenAI's API. Raises
    ProviderError when OPENAI_BASE_URL is not a usable URL."""
    env = os.environ if environ is None else environ
    return _url(env.get("OPENAI_BASE_URL"), "OPENAI_BASE_URL") or DEFAULT_OPENAI_URL


def _choose(request: EndpointRequest, env: Mapping[str, str]) -> EndpointSettings:
    env_url = _url(env.get("OPENAI_BASE_URL"), "OPENAI_BASE_URL")
    env_key = env.get("OPENAI_API_KEY") or None
    given_url = _url(request.base_url, "the base URL")
    recorded = request.recorded_url if request.use_recorded else None
    if recorded is not None and _is_local(recorded):
        # "local" is the bundled model; "local:PATH" another GGUF file, found again.
        return EndpointSettings(local=True, local_model=recorded.partition(":")[2] or None,
                                recorded=True)
    if recorded is None and request.local:
        return EndpointSettings(local=True, local_model=request.local_model)
    if recorded is not None:
        url = _url(recorded, "the run's recorded endpoint")
    else:
        url = given_url or env_url
        if url is None and not (request.api_key or env_key):
            return EndpointSettings(local=True)
        url = url or DEFAULT_OPENAI_URL
    is_recorded = recorded is not None
    if is_recorded:
        model = request.model or request.recorded_model or env.get("PDR_MODEL")
    else:
        model = request.model or env.get("PDR_MODEL") or request.recorded_model
    key, source = _key_for(url, is_recorded, request, given_url, key_home(env), env_key)
    return EndpointSettings(url, key, model or None, max_in_flight=env.get("PDR_MAX_IN_FLIGHT")
                            or None, key_source=source, recorded=is_recorded)


def _key_for(url: str, is_recorded: bool, request: EndpointRequest, given_url: str | None,
             env_home: str, env_key: str | None) -> tuple[str | None, str]:
    if request.api_key and same_endpoint(url, given_url or env_home):
        return request.api_key, "the key given for it"
    if env_key and same_endpoint(url, env_home):
        return env_key, "OPENAI_API_KEY"
    configured = request.api_key or env_key
    if is_recorded and request.trust_recorded and configured:
        return configured, f"the configured key, trusted for {host_of(url)}"
    if on_own_network(url):
        return None, "none (an endpoint on this machine or its network)"
    host = host_of(url)
    if is_recorded and configured:
        raise UntrustedEndpoint(
            f"the run was made on {url}, not on the configured endpoint ({env_home}): the "
            f"configured key is not sent to {host} unless you trust it "
            "(--trust-recorded-endpoint, or confirm in the app), or pass --base-url to "
            "call another endpoint", host)
    owner = f"it belongs to {env_home}" if env_key else "none is set"
    raise ProviderError(
        f"{url} is a remote endpoint and no API key is given for it (OPENAI_API_KEY: {owner}): "
        "set OPENAI_BASE_URL to it with its key in OPENAI_API_KEY, pass --api-key-env NAME "
        "(a variable holding its key), or type its key on the Settings page", kind="auth")


def _url(text: str | None, what: str) -> str | None:
    if text is None or not text.strip():
        return None
    try:
        return check_base_url(text)
    except ProviderError as exc:
        raise ProviderError(f"{what}: {exc}", kind="bad_request") from None


def _canonical(url: str) -> str:
    parts = urlsplit(url.strip().rstrip("/"))
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    host = (parts.hostname or "").lower()
    return f"{parts.scheme.lower()}://{host}:{port}{parts.path}"


def on_own_network(base_url: str) -> bool:
    """Whether an endpoint is this machine's or its local network's (vLLM, Ollama and
    llama.cpp servers there take no key), rather than a hosted API that needs one."""
    import ipaddress

    host = urlsplit(check_base_url(base_url)).hostname or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        # localhost, a container or LAN name without dots, or an mDNS name
        return host == "localhost" or "." not in host or host.endswith((".local", ".lan"))
    return address.is_loopback or address.is_private or address.is_link_local
