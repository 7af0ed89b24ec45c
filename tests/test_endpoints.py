"""The one rule of which endpoint, model and key a call uses (pdr_core.providers.endpoints):
a table of its precedence, and its key invariants over every combination of inputs."""

from __future__ import annotations

import itertools

import pytest

from pdr_core.providers import (
    DEFAULT_OPENAI_URL,
    EndpointRequest,
    ProviderError,
    UntrustedEndpoint,
    check_endpoint,
    choose_endpoint,
    key_home,
)
from pdr_core.providers.endpoints import same_endpoint

ENV_URL = "https://env.example.com/v1"
GIVEN_URL = "https://given.example.com/v1"
RECORDED_URL = "https://recorded.example.com/v1"
LAN_URL = "http://127.0.0.1:8000/v1"
ENV_KEY, GIVEN_KEY = "sk-env", "sk-given"
ENV = {"OPENAI_BASE_URL": ENV_URL, "OPENAI_API_KEY": ENV_KEY, "PDR_MODEL": "env-model"}
KEY_ONLY = {"OPENAI_API_KEY": ENV_KEY}
RUN = {"base_url": RECORDED_URL, "model": "run-model"}

# (environment, request) -> (base_url or None for the bundled model, model, key); a string
# names the error's class for a refusal.
TABLE = [
    # new runs: the given endpoint, else the environment's, else OpenAI's, else local
    ({}, EndpointRequest(), (None, None, None)),
    ({"PDR_MODEL": "m"}, EndpointRequest(), (None, None, None)),
    (KEY_ONLY, EndpointRequest(model="m"), (DEFAULT_OPENAI_URL, "m", ENV_KEY)),
    (ENV, EndpointRequest(), (ENV_URL, "env-model", ENV_KEY)),
    (ENV, EndpointRequest(model="m"), (ENV_URL, "m", ENV_KEY)),
    (ENV, EndpointRequest(local=True), (None, None, None)),
    (ENV, EndpointRequest(base_url=ENV_URL + "/"), (ENV_URL, "env-model", ENV_KEY)),
    # the environment's key never goes to another URL ...
    (ENV, EndpointRequest(base_url=GIVEN_URL), "ProviderError"),
    (KEY_ONLY, EndpointRequest(base_url=GIVEN_URL, model="m"), "ProviderError"),
    (ENV, EndpointRequest(base_url=LAN_URL), (LAN_URL, "env-model", None)),
    # ... a key given for it does, and a key given without a URL is the environment's URL's
    (ENV, EndpointRequest(base_url=GIVEN_URL, api_key=GIVEN_KEY),
     (GIVEN_URL, "env-model", GIVEN_KEY)),
    (ENV, EndpointRequest(api_key=GIVEN_KEY), (ENV_URL, "env-model", GIVEN_KEY)),
    ({}, EndpointRequest(api_key=GIVEN_KEY, model="m"), (DEFAULT_OPENAI_URL, "m", GIVEN_KEY)),
    # a run's recorded endpoint: kept over the environment (PDR_MODEL alone moves nothing)
    ({"PDR_MODEL": "m"}, EndpointRequest.for_run({"base_url": LAN_URL, "model": "run-model"}),
     (LAN_URL, "run-model", None)),
    (KEY_ONLY | {"PDR_MODEL": "m"},
     EndpointRequest.for_run({"base_url": LAN_URL, "model": "run-model"}),
     (LAN_URL, "run-model", None)),
    (ENV, EndpointRequest.for_run({"base_url": "local", "model": "x"}), (None, None, None)),
    (ENV, EndpointRequest.for_run({"base_url": ENV_URL, "model": "run-model"}),
     (ENV_URL, "run-model", ENV_KEY)),
    (ENV, EndpointRequest.for_run(RUN, model="m"), "UntrustedEndpoint"),
    (ENV, EndpointRequest.for_run(RUN, trust_recorded=True),
     (RECORDED_URL, "run-model", ENV_KEY)),
    (ENV, EndpointRequest.for_run(RUN, base_url=GIVEN_URL, api_key=GIVEN_KEY,
                                  trust_recorded=True), (RECORDED_URL, "run-model", GIVEN_KEY)),
    ({}, EndpointRequest.for_run(RUN), "ProviderError"),
    ({}, EndpointRequest.for_run(RUN, trust_recorded=True), "ProviderError"),
    (ENV, EndpointRequest.for_run({"base_url": "", "model": "run-model"}),
     (ENV_URL, "env-model", ENV_KEY)),
    (KEY_ONLY, EndpointRequest.for_run({"base_url": "", "model": "run-model"}),
     (DEFAULT_OPENAI_URL, "run-model", ENV_KEY)),
    # --base-url / --local (use_recorded=False) replace the recorded endpoint
    (ENV, EndpointRequest.for_run(RUN, base_url=ENV_URL, use_recorded=False),
     (ENV_URL, "env-model", ENV_KEY)),
    (KEY_ONLY, EndpointRequest.for_run(RUN, base_url=LAN_URL, use_recorded=False),
     (LAN_URL, "run-model", None)),
    (ENV, EndpointRequest.for_run(RUN, local=True, use_recorded=False), (None, None, None)),
    (ENV, EndpointRequest.for_run(RUN, base_url=GIVEN_URL, use_recorded=False,
                                  trust_recorded=True), "ProviderError"),
]


@pytest.mark.parametrize("environ, request_, expected", TABLE)
def test_precedence_table(environ, request_, expected):
    if isinstance(expected, str):
        with pytest.raises(ProviderError) as caught:
            choose_endpoint(request_, environ)
        assert type(caught.value).__name__ == expected
        return
    chosen = choose_endpoint(request_, environ)
    url, model, key = expected
    assert (chosen.base_url, chosen.uses_local) == (url, url is None)
    if url is not None:
        assert (chosen.model, chosen.api_key) == (model, key)
        assert chosen.key_source and chosen.describe()


URLS = (None, ENV_URL, GIVEN_URL, RECORDED_URL, LAN_URL)
ENVIRONS = [
    {k: v for k, v in (("OPENAI_BASE_URL", url), ("OPENAI_API_KEY", key),
                       ("PDR_MODEL", model)) if v}
    for url, key, model in itertools.product((None, ENV_URL, LAN_URL), (None, ENV_KEY),
                                             (None, "env-model"))
]
REQUESTS = [
    EndpointRequest(base_url=url, model=model, api_key=key, local=local, recorded_url=recorded,
                    recorded_model="run-model" if recorded else None,
                    use_recorded=use, trust_recorded=trust)
    for url, model, key, local, recorded, use, trust in itertools.product(
        URLS, (None, "m"), (None, GIVEN_KEY), (False, True), (None, "local", *URLS[1:]),
        (True, False), (False, True))
]


def test_every_combination_keeps_each_key_with_its_endpoint():
    """Over every combination: a key only goes to the endpoint it belongs to, or to a
    recorded endpoint the user trusted; a recorded endpoint is kept unless replaced."""
    outcomes = 0
    for environ, request in itertools.product(ENVIRONS, REQUESTS):
        try:
            chosen = choose_endpoint(request, environ)
        except UntrustedEndpoint as exc:
            assert not request.trust_recorded and request.use_recorded
            assert exc.host in (request.recorded_url or "")
            continue
        except ProviderError:
            continue
        outcomes += 1
        env_home = environ.get("OPENAI_BASE_URL") or DEFAULT_OPENAI_URL
        trusted = request.trust_recorded and chosen.recorded
        if request.use_recorded and request.recorded_url:
            assert chosen.recorded
            assert chosen.uses_local == (request.recorded_url == "local")
            if not chosen.uses_local:
                assert same_endpoint(chosen.base_url, request.recorded_url)
                assert chosen.model == (request.model or "run-model")
        if chosen.uses_local:
            continue
        if chosen.api_key == ENV_KEY and not trusted:
            assert same_endpoint(chosen.base_url, env_home)
        if chosen.api_key == GIVEN_KEY and not trusted:
            assert same_endpoint(chosen.base_url, request.base_url or env_home)
    assert outcomes > 1000


def test_a_local_gguf_file_is_recorded_and_found_again():
    given = choose_endpoint(EndpointRequest(local=True, local_model="/models/qwen.gguf"), ENV)
    assert given.uses_local and given.local_model == "/models/qwen.gguf" and not given.api_key
    # a run made on it records "local:PATH"; resume and fork call that file again, keyless
    run = {"base_url": "local:/models/qwen.gguf", "model": "Qwen (local)"}
    again = choose_endpoint(EndpointRequest.for_run(run), ENV)
    assert again.uses_local and again.recorded and again.local_model == "/models/qwen.gguf"
    assert not again.api_key
    bundled = choose_endpoint(EndpointRequest.for_run({"base_url": "local"}), ENV)
    assert bundled.uses_local and bundled.local_model is None


def test_key_home_is_the_environment_endpoint_else_openai():
    assert key_home(ENV) == ENV_URL
    assert key_home(KEY_ONLY) == DEFAULT_OPENAI_URL
    with pytest.raises(ProviderError, match="OPENAI_BASE_URL"):
        key_home({"OPENAI_BASE_URL": "localhost:8000"})


def test_the_provider_calls_the_url_it_is_given_and_never_reads_the_environment(monkeypatch):
    from pdr_core.providers.openai import OpenAIProvider

    monkeypatch.setenv("OPENAI_BASE_URL", LAN_URL)
    with pytest.raises(ProviderError, match="not a valid URL"):
        OpenAIProvider("", "sk-x", "m")  # no URL given: refused, not the environment's


def test_a_connection_test_from_endpoint_settings_lists_models_and_makes_one_call():
    import asyncio

    from openai_server import OpenAIServer

    with OpenAIServer(models=["fake-model", "other"]) as server:
        settings = choose_endpoint(EndpointRequest(base_url=server.base_url,
                                                   model="fake-model"), {})
        check = asyncio.run(check_endpoint(settings))
        server.wait_idle()
        bodies = [r["body"] for r in server.chat_requests]
    assert check.ok and set(check.models) == {"fake-model", "other"}
    assert [b["max_tokens"] for b in bodies] == [1]
