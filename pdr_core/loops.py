"""One object per running event loop.

What holds sockets or futures (an httpx client, a store's grouped commits) breaks when used
from another event loop, and Streamlit runs each job in a fresh one: so such an object is
made once per loop, on first use there, and let go with the loop.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
Loop = asyncio.AbstractEventLoop


class PerLoop(Generic[T]):
    """The object of each running event loop, made by `make(loop)` on first use there
    (under a lock, so one per loop whatever the threads), kept while the loop lives."""

    def __init__(self, make: Callable[[Loop], T]):
        self._make = make
        self._items: weakref.WeakKeyDictionary[Loop, T] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def get(self) -> T:
        """The running event loop's object, made now if it has none."""
        loop = asyncio.get_running_loop()
        with self._lock:
            item = self._items.get(loop)
            if item is None:
                # Objects of closed loops can never be used again; let them go.
                for old in [old for old in self._items if old.is_closed()]:
                    del self._items[old]
                item = self._items[loop] = self._make(loop)
            return item

    def peek(self, loop: Loop) -> T | None:
        """`loop`'s object if it has one; makes none."""
        with self._lock:
            return self._items.get(loop)

    def drop(self, loop: Loop, when: Callable[[T], bool] = lambda _: True) -> None:
        """Let go of `loop`'s object, if it has one and `when(it)` holds."""
        with self._lock:
            item = self._items.get(loop)
            if item is not None and when(item):
                del self._items[loop]
