"""PerLoop: one object per running event loop, made on first use there."""

from __future__ import annotations

import asyncio

from pdr_core.loops import PerLoop


def test_one_object_per_loop_made_once_and_let_go_with_a_closed_loop():
    made = []
    per_loop: PerLoop[list] = PerLoop(lambda loop: made.append(loop) or [loop])

    async def twice():
        return per_loop.get(), per_loop.get(), asyncio.get_running_loop()

    first, again, loop = asyncio.run(twice())
    assert first is again and made == [loop]
    assert per_loop.peek(loop) is first  # the finished loop's object is kept until ...
    second, _, other = asyncio.run(twice())
    assert second is not first and made == [loop, other]
    assert per_loop.peek(loop) is None  # ... another loop's first use lets it go


def test_drop_only_when_asked_of_that_object():
    per_loop: PerLoop[object] = PerLoop(lambda loop: object())

    async def main():
        loop = asyncio.get_running_loop()
        item = per_loop.get()
        per_loop.drop(loop, lambda it: it is not item)
        kept = per_loop.peek(loop)
        per_loop.drop(loop, lambda it: it is item)
        return item, kept, per_loop.peek(loop)

    item, kept, after = asyncio.run(main())
    assert kept is item and after is None
