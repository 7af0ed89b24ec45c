"""How many requests go out, and when: at most so many open at once and opened per turn of
the event loop, and retries paced by backoff (or what the server asked)."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pdr_core.providers.base import ProviderError

# Requests opened per turn of the event loop, at most: opening one (building it, taking a
# connection, writing it) costs about a millisecond of CPU, so a wave of hundreds opened in one
# turn would stall the loop for hundreds of milliseconds. Four keep a turn short and still
# open thousands a second.
OPENED_PER_TURN = 4
# Backoff between tries: doubles from retry_backoff up to this many seconds. A Retry-After
# the server sends is waited for instead, up to _MAX_RETRY_AFTER (longer ones are backed off).
_MAX_BACKOFF = 8.0
_MAX_RETRY_AFTER = 60.0
_T = TypeVar("_T")


class Admission:
    """Admits requests: at most `limit` open at once, at most `per_turn` opened per loop turn.

    Opening a request (building it, taking a connection, writing it) is the costly step of a
    call; a wave of hundreds opened in one turn of the event loop stalls it for as long.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int, per_turn: int):
        self._loop = loop
        self._open = asyncio.Semaphore(limit)
        self._per_turn = per_turn
        self._opened = 0  # in this turn of the loop

    async def __aenter__(self) -> None:
        await self._open.acquire()
        try:
            while self._opened >= self._per_turn:
                await asyncio.sleep(0)  # the next turn; _new_turn, scheduled first, runs first
        except BaseException:  # cancelled while waiting for its turn: give the slot back
            self._open.release()
            raise
        if self._opened == 0:
            self._loop.call_soon(self._new_turn)
        self._opened += 1

    async def __aexit__(self, *exc_info: object) -> None:
        self._open.release()

    def _new_turn(self) -> None:
        self._opened = 0


class Retrying:
    """Tries a call again while it fails for a reason that may pass, `max_retries` times at
    most, after `backoff` seconds doubling each time (or what Retry-After asks)."""

    def __init__(self, max_retries: int, backoff: float):
        self.max_retries = max_retries
        self.backoff = backoff
        self._jitter = random.Random()

    async def __call__(self, attempt: Callable[[int], Awaitable[_T]]) -> _T:
        """`attempt(retries so far)`, tried again while it fails for a reason that may pass.

        A shared request whose answers had begun (its error carries `partial`) is not tried
        again as a whole: `complete_n` asks for its missing answers one by one.
        """
        for retries in itertools.count():
            try:
                return await attempt(retries)
            except ProviderError as error:
                if not error.retryable or error.partial is not None or retries >= self.max_retries:
                    raise
                await asyncio.sleep(self.delay(retries, error.retry_after))
        raise AssertionError("unreachable")  # itertools.count() never ends

    def delay(self, retries: int, retry_after: float | None) -> float:
        """Seconds to wait before the next try: what the server asked, else a jittered
        exponential backoff (jitter keeps many failed calls from retrying all at once)."""
        if retry_after is not None and 0 <= retry_after <= _MAX_RETRY_AFTER:
            return retry_after
        delay = min(self.backoff * 2**retries, _MAX_BACKOFF)
        return delay * (1 - 0.25 * self._jitter.random())
