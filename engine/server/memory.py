"""The server process's memory: full collections made rare and short, ended sessions' memory handed back.

:func:`settle_heap` freezes what was loaded at start and collects the oldest
generation less often (a full collection stops every session). Ended
sessions' memory goes back to the system (:class:`MemoryTrimmer`): their
cycles collected, then ``malloc_trim``.

Measured here (``python -m bench churn``, 512 px video): an ended WebRTC
session's objects are all freed, but two things kept the process growing
(~1.2 MB per session opened and closed, never returned):

- aiortc's peer connection, its transports and their event handlers form
  reference cycles, so a session's native buffers (VP8 encoder state, frames:
  megabytes) wait for a full garbage collection, which may come many
  sessions later; a collection right after a session ends frees them at once
  (cheap: what was loaded at start is frozen out of the collector's sight);
- glibc keeps freed memory in the encoder threads' malloc arenas;
  ``malloc_trim(0)`` hands it back (without glibc, musl or macOS, it is skipped).
"""

import asyncio
import ctypes
import ctypes.util
import gc
import time
from collections.abc import Callable

MIN_INTERVAL_S = 1.0
"""Trim at most this often: a burst of sessions ending pays once."""
OLDEST_GENERATION_THRESHOLD = 100
"""Collections of the middle generation between two of the oldest (Python's default: 10)."""


def settle_heap() -> None:
    """Once the server has loaded everything it keeps: make full garbage collections rare and short.

    A full collection stops the event loop, every session with it. Over the
    runtimes and networks loaded at start it stalled every session for most
    of a second in ``bench chaos``; frozen out of the collector's sight
    (``gc.freeze``) they cost nothing. Under attack the live objects left
    still made each full collection a visible stall, so the oldest
    generation is collected 10x less often (figures in bench/README.md).
    Ended sessions do not wait for it: :class:`MemoryTrimmer` collects then.
    """
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, OLDEST_GENERATION_THRESHOLD)


def _load_malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


class MemoryTrimmer:
    """Collects garbage, then calls ``malloc_trim(0)`` off the event loop, at most once per :data:`MIN_INTERVAL_S`."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._trim = _load_malloc_trim()
        self._clock = clock
        self._last_s = -MIN_INTERVAL_S
        self._task: asyncio.Task[None] | None = None

    def soon(self) -> None:
        """A session ended: trim now, or once the interval since the last trim has passed."""
        if self._task is not None and not self._task.done():
            return
        self._task = asyncio.get_running_loop().create_task(self._run(), name="malloc-trim")

    async def _run(self) -> None:
        wait_s = self._last_s + MIN_INTERVAL_S - self._clock()
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        self._last_s = self._clock()
        gc.collect()
        if self._trim is not None:
            await asyncio.to_thread(self._trim, 0)
