"""Providers: the OpenAI-compatible endpoint client and the bundled local model."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pdr_core.providers.base import (
    Completion,
    DeltaCallback,
    Message,
    Provider,
    ProviderError,
    Sampling,
    Usage,
    check_base_url,
)

__all__ = [
    "check_base_url",
    "Completion",
    "EndpointSettings",
    "resolve_provider",
    "DeltaCallback",
    "Message",
    "Provider",
    "ProviderError",
    "Sampling",
    "Usage",
]


DEFAULT_OPENAI_URL = "https://api.openai.com/v1"


@dataclass(frozen=True)
class EndpointSettings:
    """Where calls go. Never printed whole: it holds the API key."""

    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    model: str | None = None
    local: bool = False
    # A GGUF file for the local model; None: $PDR_LOCAL_MODEL, else the bundled model.
    local_model: str | None = None
    # PDR_MAX_IN_FLIGHT as given (requests open at once per event loop); resolve_provider
    # checks it, where every other setting is checked.
    max_in_flight: str | None = None

    @classmethod
    def from_env(
        cls,
        base_url: str | None = None,
        api_key: str | None = None,
        model: str | None = None,
        local: bool | str | None = False,
        environ: Mapping[str, str] | None = None,
    ) -> EndpointSettings:
        """Flags first, then OPENAI_BASE_URL, OPENAI_API_KEY, PDR_MODEL, PDR_MAX_IN_FLIGHT.

        `local` is True for the local model, or the path of its GGUF file.
        """
        env = os.environ if environ is None else environ
        if isinstance(local, str):
            local, local_model = True, local.strip() or None
        else:
            local, local_model = bool(local), None
        return cls(
            base_url=base_url or env.get("OPENAI_BASE_URL") or None,
            api_key=api_key or env.get("OPENAI_API_KEY") or None,
            model=model or env.get("PDR_MODEL") or None,
            local=local,
            local_model=local_model,
            max_in_flight=env.get("PDR_MAX_IN_FLIGHT") or None,
        )

    @property
    def uses_local(self) -> bool:
        """No endpoint and no key configured: the bundled local model."""
        return self.local or not (self.base_url or self.api_key)


def resolve_provider(settings: EndpointSettings) -> Provider:
    """The provider the settings name; the bundled local model when none is configured."""
    if settings.uses_local:
        from pdr_core.providers.local import shared_local_provider

        return shared_local_provider(settings.local_model)
    from pdr_core.providers.openai_compat import OpenAIProvider

    if not settings.model:
        raise ProviderError(
            "no model named: pass --model NAME or set PDR_MODEL (the endpoint's "
            "/v1/models lists what it serves)",
            kind="bad_request",
        )
    if not settings.base_url and not settings.api_key:
        raise ProviderError("OpenAI needs a key: set OPENAI_API_KEY", kind="auth")
    if settings.base_url and not settings.api_key and not _on_own_network(settings.base_url):
        raise ProviderError(
            f"{check_base_url(settings.base_url)} is a remote endpoint and no API key is set: "
            "set OPENAI_API_KEY (or type the key on the Settings page)",
            kind="auth",
        )
    # Local servers (vLLM, Ollama, llama.cpp) accept any key, but the client needs one.
    return OpenAIProvider(
        base_url=settings.base_url or DEFAULT_OPENAI_URL,
        api_key=settings.api_key or "not-needed",
        model=settings.model,
        max_in_flight=_max_in_flight(settings.max_in_flight),
    )


def _max_in_flight(text: str | None) -> int:
    from pdr_core.providers.openai_compat import DEFAULT_MAX_IN_FLIGHT

    if text is None:
        return DEFAULT_MAX_IN_FLIGHT
    if not text.strip().isdigit() or int(text) < 1:
        raise ProviderError(
            f"PDR_MAX_IN_FLIGHT must be a whole number of 1 or more (the requests one process "
            f"keeps open at once; default {DEFAULT_MAX_IN_FLIGHT}), not {text!r}",
            kind="bad_request",
        )
    return int(text)


def _on_own_network(base_url: str) -> bool:
    """Whether an endpoint is this machine's or its local network's (vLLM, Ollama and
    llama.cpp servers there take no key), rather than a hosted API that needs one."""
    host = urlsplit(check_base_url(base_url)).hostname or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        # localhost, a container or LAN name without dots, or an mDNS name
        return host == "localhost" or "." not in host or host.endswith((".local", ".lan"))
    return address.is_loopback or address.is_private or address.is_link_local
