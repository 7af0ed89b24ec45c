"""One SDK client per running event loop, closed when that loop ends.

An httpx client created in one event loop breaks when used from another (Streamlit runs each
job in a fresh loop), so each loop gets its own client, plus one idle task that closes that
client's connections when asyncio.run (or asyncio.Runner) cancels the loop's leftover tasks
at its end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from openai import AsyncOpenAI

from pdr_core.loops import PerLoop
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
        self._clients: PerLoop[LoopClient] = PerLoop(self._new)

    def _new(self, loop: asyncio.AbstractEventLoop) -> LoopClient:
        client = self._make_client()
        guard = loop.create_task(self._close_at_loop_end(loop, client))
        return LoopClient(client, guard, Admission(loop, self._max_in_flight, OPENED_PER_TURN))

    def get(self) -> LoopClient:
        """The running event loop's client and slots."""
        return self._clients.get()

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
            self._clients.drop(loop, lambda entry: entry.client is client)
            await client.close()

    async def aclose(self) -> None:
        """Close the connections this event loop's client holds (the loop's end also does)."""
        entry = self._clients.peek(asyncio.get_running_loop())
        if entry is not None:
            guard = entry.guard
            guard.cancel()
            await asyncio.wait([guard])
            if not guard.cancelled() and guard.exception() is not None:
                raise guard.exception()
