"""Providers: the OpenAI-compatible endpoint client and the bundled local model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pdr_core.providers.base import (
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    CapabilityMemory,
    Completion,
    DeltaCallback,
    Message,
    Provider,
    ProviderError,
    Sampling,
    Usage,
    check_base_url,
)
from pdr_core.providers.endpoints import (
    DEFAULT_OPENAI_URL,
    EndpointRequest,
    EndpointSettings,
    UntrustedEndpoint,
    choose_endpoint,
    endpoint_locked,
    key_home,
)

if TYPE_CHECKING:  # the SDK is imported only when an endpoint is called
    from pdr_core.providers.openai import ConnectionCheck, OpenAIProvider

__all__ = [
    "CapabilityMemory",
    "check_endpoint",
    "key_home",
    "DEFAULT_MAX_IN_FLIGHT",
    "check_base_url",
    "choose_endpoint",
    "Completion",
    "endpoint_locked",
    "EndpointRequest",
    "EndpointSettings",
    "resolve_provider",
    "UntrustedEndpoint",
    "DeltaCallback",
    "Message",
    "Provider",
    "ProviderError",
    "Sampling",
    "Usage",
]


def resolve_provider(settings: EndpointSettings, memory: CapabilityMemory | None = None
                     ) -> Provider:
    """The provider the settings name (see `choose_endpoint` for which key goes where); the
    bundled local model when none is configured. `memory` (the run store) keeps what the
    endpoint was found to do across runs and processes."""
    # Checked first, so that a mistyped value is named even when the local model is used.
    timeout = _timeout(settings.timeout)
    max_retries = _max_retries(settings.max_retries)
    if settings.uses_local:
        from pdr_core.providers.local import shared_local_provider

        return shared_local_provider(settings.local_model)
    if not settings.model:
        raise ProviderError(
            "no model named: pass --model NAME or set PDR_MODEL (the endpoint's "
            "/v1/models lists what it serves)",
            kind="bad_request",
        )
    return _endpoint_provider(settings, timeout, max_retries,
                              max_in_flight=_max_in_flight(settings.max_in_flight),
                              memory=memory)


async def check_endpoint(settings: EndpointSettings, timeout: float = 10.0
                         ) -> ConnectionCheck:
    """A connection test of the endpoint the settings name (the Settings page's button):
    its served models and, with a model named, one call of one output token, tried once.
    ProviderError when the settings cannot make a client."""
    return await _endpoint_provider(settings, timeout, 0).check_connection()


def _endpoint_provider(settings: EndpointSettings, timeout: float, max_retries: int,
                       **options: Any) -> OpenAIProvider:
    from pdr_core.providers.openai import OpenAIProvider  # imports the SDK: only when used

    # No key: local servers (vLLM, Ollama, llama.cpp) accept any, and the provider sends
    # its placeholder. No model: a connection test still lists what the endpoint serves.
    return OpenAIProvider(settings.base_url or DEFAULT_OPENAI_URL, settings.api_key,
                          settings.model or "", timeout=timeout, max_retries=max_retries,
                          **options)


# Past a day a timeout means "never"; past a hundred retries a call never ends either.
_MAX_TIMEOUT = 86_400.0
_MAX_RETRIES = 100


def _timeout(text: str | None) -> float:
    if text is None:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds <= _MAX_TIMEOUT:  # also refuses nan and inf
        raise ProviderError(
            f"--timeout (or PDR_TIMEOUT) must be a number of seconds above 0 and at most "
            f"{_MAX_TIMEOUT:g} (how long one try of a call may take; default "
            f"{DEFAULT_TIMEOUT:g}), not {text!r}",
            kind="bad_request",
        )
    return seconds


def _max_retries(text: str | None) -> int:
    if text is None:
        return DEFAULT_MAX_RETRIES
    digits = text.strip()
    if not (digits.isascii() and digits.isdigit()) or int(digits) > _MAX_RETRIES:
        raise ProviderError(
            f"--max-retries (or PDR_MAX_RETRIES) must be a whole number from 0 to "
            f"{_MAX_RETRIES} (tries of a failed call after the first; default "
            f"{DEFAULT_MAX_RETRIES}), not {text!r}",
            kind="bad_request",
        )
    return int(digits)


def _max_in_flight(text: str | None) -> int:
    if text is None:
        return DEFAULT_MAX_IN_FLIGHT
    if not text.strip().isdigit() or int(text) < 1:
        raise ProviderError(
            f"PDR_MAX_IN_FLIGHT must be a whole number of 1 or more (the requests one process "
            f"keeps open at once; default {DEFAULT_MAX_IN_FLIGHT}), not {text!r}",
            kind="bad_request",
        )
    return int(text)
