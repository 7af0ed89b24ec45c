"""Providers: the OpenAI-compatible endpoint client and the bundled local model."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pdr_core.providers.base import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
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
    # PDR_MAX_IN_FLIGHT as given (requests open at once per event loop); resolve_provider
    # checks it, where every other setting is checked.
    max_in_flight: str | None = None
    # Seconds one try of a call may take, and tries after the first (--timeout and
    # --max-retries, else PDR_TIMEOUT and PDR_MAX_RETRIES), as given; checked likewise.
    timeout: str | None = None
    max_retries: str | None = None

    @classmethod
    def from_env(
        cls,
        base_url: str | None = None,
        api_key: str | None = None,
        model: str | None = None,
        local: bool = False,
        environ: Mapping[str, str] | None = None,
        *,
        timeout: str | None = None,
        max_retries: str | None = None,
    ) -> EndpointSettings:
        """Flags first, then OPENAI_BASE_URL, OPENAI_API_KEY, PDR_MODEL, PDR_MAX_IN_FLIGHT,
        PDR_TIMEOUT, PDR_MAX_RETRIES."""
        env = os.environ if environ is None else environ
        return cls(
            base_url=base_url or env.get("OPENAI_BASE_URL") or None,
            api_key=api_key or env.get("OPENAI_API_KEY") or None,
            model=model or env.get("PDR_MODEL") or None,
            local=local,
            max_in_flight=env.get("PDR_MAX_IN_FLIGHT") or None,
            timeout=timeout if timeout is not None else env.get("PDR_TIMEOUT") or None,
            max_retries=(max_retries if max_retries is not None
                         else env.get("PDR_MAX_RETRIES") or None),
        )

    @property
    def uses_local(self) -> bool:
        """No endpoint and no key configured: the bundled local model."""
        return self.local or not (self.base_url or self.api_key)


def resolve_provider(settings: EndpointSettings) -> Provider:
    """The provider the settings name; the bundled local model when none is configured."""
    # Checked first, so that a mistyped value is named even when the local model is used.
    timeout = _timeout(settings.timeout)
    max_retries = _max_retries(settings.max_retries)
    if settings.uses_local:
        from pdr_core.providers.local import LocalProvider

        return LocalProvider()
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
        timeout=timeout,
        max_retries=max_retries,
    )


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
