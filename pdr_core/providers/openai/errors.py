"""What went wrong with an endpoint, in words: every SDK error (and every reply that is not
the chat protocol) becomes a ProviderError that says what a person can do about it, with
the API key, or anything that looks like one, left out."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Sequence
from email.utils import parsedate_to_datetime

import httpx2  # the transport of openai 3.x; its exceptions say whether a connection was made
import openai

from pdr_core.providers.base import PLACEHOLDER_KEY, ProviderError

_CONTEXT_PHRASES = (
    "context length",
    "context_length",
    "maximum context",
    "context window",
    "available context",
    "context size",
    "too many tokens",
    "prompt is too long",
    "input is too long",
)
# A masked key as servers echo it ("sk-ab****wxyz") or anything that looks like a key.
_KEYLIKE = re.compile(r"\S*\*{3,}\S*|\b(?:sk|pk|rk|key)-[A-Za-z0-9_\-]{6,}")
# Lists the models an endpoint serves (a 404 is explained by what it does serve).
ListModels = Callable[[], Awaitable[list[str]]]


def tried(retries: int) -> str:
    """' after N retries' for a message, or nothing before the first retry."""
    if not retries:
        return ""
    return f" after {retries} retr{'y' if retries == 1 else 'ies'}"


class Errors:
    """The ProviderErrors of one endpoint and model, as its provider raises them."""

    def __init__(self, base_url: str, api_key: str, model: str, timeout: float):
        self._url = base_url
        self._api_key = api_key
        self._model = model
        self._timeout = timeout

    def error(self, message: str, kind: str, retryable: bool = False,
              retry_after: float | None = None) -> ProviderError:
        return ProviderError(self.redact(message), kind=kind, retryable=retryable,
                             retry_after=retry_after)

    def redact(self, text: str) -> str:
        """`text` without the API key or anything that looks like (part of) a key."""
        if self._api_key and self._api_key != PLACEHOLDER_KEY:
            text = text.replace(self._api_key, "[redacted]")
        return _KEYLIKE.sub("[redacted]", text)

    def protocol(self, detail: str, retries: int | None = None) -> ProviderError:
        """Not the chat protocol. With `retries` (a garbled or truncated reply, which may
        pass) it is tried again; without, it is a reply no retry would change."""
        after = "" if retries is None else tried(retries)
        return self.error(
            f"{self._url} answered with something that is not the OpenAI chat protocol"
            f"{after}: {detail}. Check that the base URL points at an OpenAI-compatible API "
            "(usually ending in /v1) and not at a web page or a proxy.",
            kind="protocol",
            retryable=retries is not None,
        )

    def cut(self, events: int, retries: int, cause: str) -> ProviderError:
        """A stream that ended, `events` chunks in, before its answers were complete."""
        return self.error(
            f"The stream from {self._url} was cut off mid-way, {events} chunk(s) "
            f"in ({cause}){tried(retries)}. The server or a proxy closed the "
            "connection early; retry the call.",
            kind="connection",
            retryable=True,
        )

    def stalled(self, events: int, retries: int) -> ProviderError:
        """A stream that sent nothing for longer than the timeout."""
        return self.error(
            f"The stream from {self._url} stalled: no data for {self._timeout:g} "
            f"s, {events} chunk(s) in{tried(retries)}. The "
            "server may be overloaded; retry, or raise the timeout (PDR_TIMEOUT, or "
            "--timeout on the command line).",
            kind="timeout",
            retryable=True,
        )

    def no_model(self) -> ProviderError:
        return self.error(
            f"No model name given for {self._url}: choose one of the models it serves "
            "(check_connection lists them).",
            kind="bad_request",
        )

    def error_reply(self, said: str) -> ProviderError:
        """A 200 whose body is an error object instead of a completion."""
        return self.error(f"{self._url} returned an error: {said[:300]}", kind="server",
                          retryable=True)

    def content_filtered(self, chars: int) -> ProviderError:
        return ProviderError(
            f"The endpoint's content filter stopped the answer of model {self._model!r} "
            f"(finish_reason 'content_filter') after {chars} characters. Rephrase "
            "the question or the prompt templates.",
            kind="content_filter",
        )

    async def translate(self, error: openai.OpenAIError, list_models: ListModels,
                        listing: bool = False, retries: int = 0) -> ProviderError:
        """A ProviderError saying what went wrong and what to do, for an SDK error.
        `list_models` names what the endpoint serves when a model was not found."""
        url = self._url
        connecting = _failed_to_connect(error)
        if isinstance(error, openai.APITimeoutError):
            what = "Could not connect to" if connecting else "No answer from"
            return self.error(
                f"{what} {url} within {self._timeout:g} s (the timeout)"
                f"{tried(retries)}. "
                "The server may be overloaded or the request too long; retry, or raise the "
                "timeout (PDR_TIMEOUT, or --timeout on the command line).",
                kind="timeout",
                retryable=True,
            )
        if isinstance(error, openai.APIConnectionError):
            return self._connection(error, connecting, retries)
        if isinstance(error, openai.APIResponseValidationError):
            return self.protocol(f"the response did not match the schema ({error.message})")
        if isinstance(error, openai.APIStatusError):
            return await self._status(error, list_models, listing, retries)
        if isinstance(error, openai.APIError):
            # An error event inside a stream, after a 200.
            said = _server_message(error)
            if _is_context_error(error):
                return self._context(said)
            return self.error(
                f"{url} reported an error mid-stream{tried(retries)}: {said}",
                kind="server", retryable=True,
            )
        return self.error(f"The OpenAI client failed: {error}", kind="other")

    def _connection(self, error: openai.APIConnectionError, connecting: bool,
                    retries: int) -> ProviderError:
        if connecting:
            return self.error(
                f"Cannot connect to {self._url}{tried(retries)}: {cause(error)}. Check "
                "that the server is running and that the URL (host and port) is right.",
                kind="connection",
                retryable=True,
            )
        return self.error(
            f"The connection to {self._url} broke before the answer was complete"
            f"{tried(retries)}: {cause(error)}. The server may have crashed or a "
            "proxy dropped the connection; retry the call.",
            kind="connection",
            retryable=True,
        )

    async def _status(self, error: openai.APIStatusError, list_models: ListModels,
                      listing: bool, retries: int) -> ProviderError:
        url = self._url
        status = error.status_code
        said = _server_message(error)
        if isinstance(error, openai.AuthenticationError):
            # The server's own text may echo a masked key: leave it out altogether.
            return self.error(
                f"Authentication failed at {url} (HTTP 401): the endpoint rejected the API key. "
                "Check the API key you entered or the OPENAI_API_KEY environment variable.",
                kind="auth",
            )
        if isinstance(error, openai.PermissionDeniedError):
            return self.error(
                f"Access denied at {url} (HTTP 403): the API key may not use model "
                f"{self._model!r} or this endpoint; check the key's permissions. Server said: "
                f"{said}",
                kind="auth",
            )
        if isinstance(error, openai.NotFoundError):
            return await self._not_found(said, listing, error, list_models)
        if isinstance(error, openai.RateLimitError):
            return self._rate_limited(error, said, retries)
        if _is_context_error(error) or status == 413:
            return self._context(said)
        if status >= 500 or status in (408, 409):  # 408, 409: the SDK retries them too
            if isinstance(error.body, str) and "<" in error.body:
                said = (
                    f"HTTP {status} with an HTML page instead of JSON: a proxy or gateway "
                    "answered, and the model server behind it may be down."
                )
            return self.error(
                f"Server error from {url} (HTTP {status}){tried(retries)}: {said} "
                "Check the server's logs, or retry later.",
                kind="server",
                retryable=True,
                retry_after=_retry_after(error.response.headers),
            )
        return self.error(
            f"{url} rejected the request to model {self._model!r} (HTTP {status}): {said}",
            kind="bad_request",
        )

    def _rate_limited(self, error: openai.RateLimitError, said: str,
                      retries: int) -> ProviderError:
        if error.code == "insufficient_quota":
            return self.error(
                f"{self._url} refused the call: the account's quota is used up (HTTP 429 "
                "insufficient_quota). Check the plan and billing of the API key.",
                kind="rate_limited",
            )
        wait = error.response.headers.get("retry-after")
        asked = f"; it asked to wait {wait} s" if wait else ""
        return self.error(
            f"Rate limited by {self._url} (HTTP 429){tried(retries)}{asked}. Lower the "
            f"number of parallel calls (width) or wait and try again. Server said: {said}",
            kind="rate_limited",
            retryable=True,
            retry_after=_retry_after(error.response.headers),
        )

    def _context(self, said: str) -> ProviderError:
        return self.error(
            f"The prompt plus max_tokens is too long for the context window of model "
            f"{self._model!r} at {self._url}. Lower max_tokens or the workspace size, or "
            f"use a model with a longer context. Server said: {said}",
            kind="context_length",
        )

    async def _not_found(self, said: str, listing: bool, error: openai.APIStatusError,
                         list_models: ListModels) -> ProviderError:
        url = self._url
        if listing:
            return self.error(
                f"{url}/models does not exist (HTTP 404): this endpoint does not list models, "
                "or the base URL is wrong (OpenAI-compatible servers usually end in /v1).",
                kind="bad_request",
            )
        about_model = error.code == "model_not_found" or "model" in said.lower()
        try:
            served = await list_models()
        except ProviderError as list_error:
            if about_model:
                return self.error(
                    f"Model {self._model!r} was not found at {url} (HTTP 404), and its model "
                    f"list could not be read ({list_error}). Server said: {said}",
                    kind="model_not_found",
                )
            hint = "" if url.endswith("/v1") else f" (try {url}/v1)"
            return self.error(
                f"Nothing found at {url}/chat/completions (HTTP 404). Check the base URL: "
                f"OpenAI-compatible servers usually end in /v1{hint}.",
                kind="bad_request",
            )
        if about_model or self._model not in served:
            offer = (
                f"It serves: {listing_text(served)}. Pick one of those."
                if served
                else "It lists no models; check the model name."
            )
            return self.error(
                f"Model {self._model!r} was not found at {url} (HTTP 404). {offer}",
                kind="model_not_found",
            )
        return self.error(
            f"{url} serves model {self._model!r} but answered HTTP 404 for chat completions: "
            f"{said} Check the base URL (OpenAI-compatible servers usually end in /v1).",
            kind="bad_request",
        )


def mentions(error: openai.APIStatusError, word: str) -> bool:
    """Whether a refusal names `word` (a parameter the endpoint does not take)."""
    return word in str(error.body) or word in error.message or error.param == word


def cause(error: BaseException) -> str:
    """The lowest-level reason of a connection error, e.g. 'Connection refused'."""
    reasons = []
    current: BaseException | None = error.__cause__ or error.__context__
    while current is not None and len(reasons) < 4:
        text = str(current).strip()
        if text and text not in reasons:
            reasons.append(text)
        current = current.__cause__ or current.__context__
    return reasons[-1] if reasons else str(error)



def preview(value: object) -> str:
    """A short quoted glimpse of a reply that is not what was expected."""
    text = value if isinstance(value, str) else type(value).__name__
    text = " ".join(text.split())
    return repr(text[:80] + ("..." if len(text) > 80 else ""))


def listing_text(models: Sequence[str], limit: int = 20) -> str:
    """Model names for a message, the first `limit` of them."""
    shown = ", ".join(models[:limit])
    return shown + (f" and {len(models) - limit} more" if len(models) > limit else "")


def _retry_after(headers: httpx2.Headers) -> float | None:
    """Seconds a response asks to wait (retry-after-ms, or Retry-After in seconds or as a
    date), as the SDK reads them; None when it says nothing usable."""
    millis = headers.get("retry-after-ms")
    try:
        if millis is not None:
            return float(millis) / 1000
    except ValueError:
        pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError):
        return None


def _is_context_error(error: openai.APIError) -> bool:
    if error.code == "context_length_exceeded":
        return True
    text = f"{error.message} {error.body}".lower()
    return any(phrase in text for phrase in _CONTEXT_PHRASES)


def _server_message(error: openai.APIError) -> str:
    """What the server said, in one short line."""
    body = error.body
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message:
        message = body if isinstance(body, str) and body else error.message
    message = " ".join(str(message).split())
    if len(message) > 300:
        message = message[:300] + "..."
    # A whole sentence, so that advice can follow it.
    return message if message.endswith((".", "!", "?")) else message + "."


def _failed_to_connect(error: BaseException) -> bool:
    """True when no connection was made at all (refused, unknown host, connect timeout)."""
    current: BaseException | None = error
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        if isinstance(current, httpx2.ConnectError | httpx2.ConnectTimeout):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
