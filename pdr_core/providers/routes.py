"""Which provider a branch calls: a route `MODEL@URL`, or `MODEL` on the run's endpoint.

Mixture of agents draws its proposers from several endpoints or models, one route each.
A route's provider follows the one rule of pdr_core.providers.endpoints: a route on the
run's own endpoint goes through the run's provider (whose key belongs there), with the
route's model; any other is chosen by `choose_endpoint` as a base URL given with no key,
so it gets OPENAI_API_KEY only when it is OPENAI_BASE_URL, no key when it is on this
machine or its network, and is refused otherwise. A run records its routes and each node
the model and endpoint it called; keys are never recorded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from pdr_core.providers.base import CapabilityMemory, Provider, ProviderError, check_base_url
from pdr_core.providers.endpoints import EndpointRequest, choose_endpoint, same_endpoint

_WITH_URL = re.compile(r"^(?P<model>[^@\s]+)@(?P<url>https?://\S+)$")
_MODEL = re.compile(r"^[^@\s,]+$")


@dataclass(frozen=True)
class Route:
    """A model, and the endpoint that serves it (None: the run's own)."""

    model: str
    base_url: str | None = None

    def __str__(self) -> str:
        return self.model if self.base_url is None else f"{self.model}@{self.base_url}"


def parse_route(text: str) -> Route:
    """`MODEL@http(s)://HOST/...` or `MODEL`; ValueError saying what a route is."""
    text = text.strip()
    found = _WITH_URL.match(text)
    if found:
        try:
            return Route(found["model"], check_base_url(found["url"]))
        except ProviderError as exc:
            raise ValueError(f"{text!r}: {exc}") from None
    if _MODEL.match(text):
        return Route(text)
    raise ValueError(f"{text!r} is not MODEL or MODEL@URL (an http or https URL)")


def parse_routes(text: str) -> tuple[Route, ...]:
    """Comma-separated routes, in order; empty text gives none."""
    return tuple(parse_route(part) for part in text.split(",")) if text.strip() else ()


class Routes:
    """One provider per route of a run, made on first use and kept for its other calls."""

    def __init__(self, default: Provider, environ: Mapping[str, str] | None = None,
                 memory: CapabilityMemory | None = None):
        self.default = default
        self._environ = os.environ if environ is None else environ
        self._memory = memory
        self._made: dict[Route, Provider] = {}

    def provider(self, route: Route | None) -> Provider:
        """The provider `route` names (the run's for None); ProviderError when the rule
        refuses it (a remote endpoint that no configured key belongs to)."""
        if route is None:
            return self.default
        if route not in self._made:
            self._made[route] = self._make(route)
        return self._made[route]

    def _make(self, route: Route) -> Provider:
        if route.base_url is None or same_endpoint(route.base_url, self.default.base_url):
            return _with_model(self.default, route.model)
        from pdr_core.providers import resolve_provider  # the package imports this module's peers

        settings = choose_endpoint(EndpointRequest(base_url=route.base_url, model=route.model),
                                   self._environ)
        return resolve_provider(settings, memory=self._memory)


def _with_model(provider: Provider, model: str) -> Provider:
    if model == provider.model:
        return provider
    other = getattr(provider, "with_model", None)
    if other is None:
        raise ProviderError(f"the run's provider ({provider.model}) serves one model: give "
                            f"{model}'s endpoint as {model}@URL", kind="bad_request")
    return other(model)
