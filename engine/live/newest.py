"""Newest wins: the one rule by which every live output keeps latency from growing.

A renderer or an output that falls behind must show fewer frames, never older
ones. :class:`NewestWins` holds at most one item: offering a newer one replaces
the item waiting (the replaced one is dropped and counted), and an item no
newer than one already taken is refused (frames rendered in parallel can
finish out of order; showing the older after the newer would step the face
back in time). Items are ordered by an integer index (the video frame index).
"""

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class NewestWins(Generic[T]):
    """A one-item mailbox between a producer and a slower consumer (see the module docstring).

    Used from the event loop only (not thread-safe).
    """

    def __init__(self, on_drop: Callable[[], None] | None = None) -> None:
        """``on_drop`` is called once for every item offered but never taken."""
        self.dropped = 0
        """Items offered but never taken: replaced while waiting, or refused as stale."""
        self._on_drop = on_drop
        self._waiting: tuple[int, T] | None = None
        self._newest_taken = -1
        self._ready = asyncio.Event()

    @property
    def waiting(self) -> bool:
        """Whether an item is waiting to be taken."""
        return self._waiting is not None

    @property
    def newest_taken(self) -> int:
        """The index of the newest item taken so far (-1 before the first)."""
        return self._newest_taken

    def offer(self, index: int, item: T) -> bool:
        """Offer ``item`` with frame index ``index``; False when it is refused as stale.

        An accepted item replaces the one waiting, if any (that one is dropped),
        unless the waiting one is newer, in which case ``item`` is the one dropped.
        """
        if index <= self._newest_taken or (self._waiting is not None and index <= self._waiting[0]):
            self._drop()
            return False
        if self._waiting is not None:
            self._drop()
        self._waiting = (index, item)
        self._ready.set()
        return True

    def take(self) -> T | None:
        """The waiting item, now (None when nothing waits); it counts as taken."""
        if self._waiting is None:
            return None
        index, item = self._waiting
        self._waiting = None
        self._ready.clear()
        self._newest_taken = index
        return item

    def clear(self) -> None:
        """Drop the waiting item, if any (the consumer is going away)."""
        if self._waiting is not None:
            self._waiting = None
            self._ready.clear()
            self._drop()

    async def get(self) -> T:
        """Wait for an item and take it."""
        while self._waiting is None:
            await self._ready.wait()
        item = self.take()
        assert item is not None
        return item

    def _drop(self) -> None:
        self.dropped += 1
        if self._on_drop is not None:
            self._on_drop()
