"""One SDK client per running event loop, closed when that loop ends.

An httpx client created in one event loop breaks when used from another (Streamlit runs each
job in a fresh loop), so each loop gets its own client, plus one idle task that closes that
client's connections when asyncio.run (or asyncio.Runner) cancels the loop's leftover tasks
at its end.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from openai import AsyncOpenAI

from pdr_core.providers.openai.admission import OPENED_PER_TURN, Admission


@dataclass(frozen=True)
class LoopClient:
    """What the provider keeps per event loop."""

    client: AsyncOpenAI
    guard: asyncio.Task  # closes the client when the loop ends
    slots: Admission  # requests in flight, at most max_in_flight


class LoopClients:
    """The client of each running event loop, made by `make_client` on first use there, and
    the slots of its requests in flight (at most `max_in_flight`)."""

    def __init__(self, make_client: Callable[[], AsyncOpenAI], max_in_flight: int):
        self._make_client = make_client
        self._max_in_flight = max_in_flight
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopClient] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def get(self) -> LoopClient:
        """The running event loop's client and slots."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._clients.get(loop)
            if entry is None:
                # Clients of finished loops can never be used again; let them go.
                for old in [old for old in self._clients if old.is_closed()]:
                    del self._clients[old]
                client = self._make_client()
                guard = loop.create_task(self._close_at_loop_end(loop, client))
                slots = Admission(loop, self._max_in_flight, OPENED_PER_TURN)
                entry = self._clients[loop] = LoopClient(client, guard, slots)
            return entry

    async def _close_at_loop_end(
        self, loop: asyncio.AbstractEventLoop, client: AsyncOpenAI
    ) -> None:
        """Wait until cancelled, then close `client`'s connections.

        asyncio.run cancels every task still pending when its main coroutine ends, so a
        loop's keep-alive connections are closed inside that loop instead of leaking.
        """
        try:
            await loop.create_future()
        finally:
            with self._lock:
                entry = self._clients.get(loop)
                if entry is not None and entry.client is client:
                    del self._clients[loop]
            await client.close()

    async def aclose(self) -> None:
        """Close the connections this event loop's client holds (the loop's end also does)."""
        with self._lock:
            entry = self._clients.get(asyncio.get_running_loop())
        if entry is not None:
            guard = entry.guard
            guard.cancel()
            await asyncio.wait([guard])
            if not guard.cancelled() and guard.exception() is not None:
                raise guard.exception()
