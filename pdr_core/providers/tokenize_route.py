"""Counting tokens with an endpoint's own tokenizer, where its server has a tokenize route.

vLLM and llama.cpp's server answer `POST /tokenize` at the server's root (beside `/v1`):
vLLM with `{"count": N, "tokens": [...]}` for `{"model", "prompt"}`, llama.cpp with
`{"tokens": [...]}` for `{"content"}`. One body carries both spellings. Whether an endpoint
has the route is learnt once and kept in the capability memory (as `n` support is), so an
endpoint without it (OpenAI's API) costs one refused request, ever; there the workspace
bound uses the labelled estimate. Nothing is downloaded.
"""

from __future__ import annotations

import json

import httpx2  # the transport of openai 3.x (pinned with it)

from pdr_core.providers.base import CapabilityMemory

__all__ = ["CAPABILITY", "TokenizeRoute", "tokenize_url"]

CAPABILITY = "tokenize"
# Statuses that say the server has no such route (not that it failed just now).
_ABSENT = (400, 401, 403, 404, 405, 422, 501)


def tokenize_url(base_url: str) -> str:
    """The server-root tokenize route of an OpenAI-compatible base URL."""
    root = base_url.rstrip("/")
    root = root.removesuffix("/v1")
    return f"{root}/tokenize"


class TokenizeRoute:
    """One endpoint's tokenize route: `count(text)` is its token count, or None."""

    def __init__(self, base_url: str, api_key: str, model: str,
                 memory: CapabilityMemory | None = None, timeout: float = 10.0):
        self.base_url = base_url
        self.model = model
        self.url = tokenize_url(base_url)
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._memory = memory
        self._timeout = timeout
        self._known: bool | None = None

    def _recall(self) -> bool | None:
        if self._known is None and self._memory is not None:
            known = self._memory.recall(self.base_url, self.model, CAPABILITY)
            self._known = None if known is None else known.value
        return self._known

    def _learn(self, value: bool) -> None:
        self._known = value
        if self._memory is not None:
            self._memory.remember(self.base_url, self.model, CAPABILITY, value)

    async def count(self, text: str) -> int | None:
        """Tokens of `text` by the endpoint's tokenizer; None where it has no route (or did
        not answer now: a transient failure is not remembered)."""
        if self._recall() is False:
            return None
        body = {"model": self.model, "prompt": text, "content": text,
                "add_special_tokens": False, "add_special": False}
        try:
            async with httpx2.AsyncClient(timeout=self._timeout) as client:
                response = await client.post(self.url, json=body, headers=self._headers)
        except httpx2.HTTPError:
            return None
        if response.status_code in _ABSENT:
            self._learn(False)
            return None
        if response.status_code != 200:
            return None
        count = _count(response.content)
        self._learn(count is not None)
        return count


def _count(content: bytes) -> int | None:
    try:
        data = json.loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("count"), int):
        return data["count"]
    tokens = data.get("tokens")
    return len(tokens) if isinstance(tokens, list) else None
