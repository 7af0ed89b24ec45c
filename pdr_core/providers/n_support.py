"""Whether an endpoint honours `n`: remembered across processes, learnt with no run waiting.

A provider that does not know yet serves `complete_n` as separate calls, and beside them sends
one small request (a two-word prompt, one token, two choices) whose reply says whether the
endpoint honours `n`, for the rounds after. That request takes a slot of the round's calls
after they all have theirs, so the round's concurrency limit holds, and nothing waits for it.
A remembered "yes" is checked by every shared request (one that comes back short shows the
endpoint changed); a remembered "no" older than N_RECHECK_SECONDS counts as unknown, so it
is asked again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from pdr_core.providers.base import CapabilityMemory, ProviderError

# The capability's name in a CapabilityMemory.
N = "n"
# Separate calls cost no generation, so a remembered "no" is asked again only this seldom.
N_RECHECK_SECONDS = 3600.0
PROBE_MESSAGES = ({"role": "user", "content": "Say OK."},)


class NSupport:
    """What one provider knows of its endpoint's `n`, read from `memory` on first use."""

    def __init__(self, base_url: str, model: str, memory: CapabilityMemory | None):
        self._key = (base_url, model)
        self._memory = memory
        self._loaded = memory is None
        self._value: bool | None = None
        self._probe: asyncio.Task | None = None

    @property
    def value(self) -> bool | None:
        """True or False as last learnt; None while unknown."""
        if not self._loaded:
            self._loaded = True
            assert self._memory is not None
            known = self._memory.recall(*self._key, N)
            if known is not None and (known.value or known.age <= N_RECHECK_SECONDS):
                self._value = known.value
        return self._value

    def learn(self, supported: bool, asked: bool = False) -> None:
        """What a reply showed; remembered when it changed or was asked for."""
        changed = supported != self.value
        self._value = supported
        if self._memory is not None and (changed or asked):
            self._memory.remember(*self._key, N, supported)

    def wants_probe(self) -> bool:
        """Unknown, and no probe in flight on this event loop."""
        if self.value is not None:
            return False
        probe = self._probe
        return probe is None or probe.done() or probe.get_loop() is not asyncio.get_running_loop()

    def start_probe(self, choices: Callable[[], Awaitable[int]], slots: asyncio.Semaphore
                    ) -> None:
        """Ask in the background, in one of `slots`: `choices()` returns how many choices an
        `n=2` request got back. A failed probe leaves it unknown, for the next round to ask."""

        async def probe() -> None:
            async with slots:
                try:
                    got = await choices()
                except ProviderError:
                    return
            self.learn(got >= 2, asked=True)

        self._probe = asyncio.get_running_loop().create_task(probe())

    async def settle(self, timeout: float) -> None:
        """Let a probe in flight on this event loop answer, for at most `timeout` seconds:
        for a process about to end, whose last round kept it waiting for a slot."""
        probe = self._probe
        if probe is not None and not probe.done() and probe.get_loop() is (
                asyncio.get_running_loop()):
            await asyncio.wait([probe], timeout=timeout)
