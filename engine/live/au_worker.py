"""Runs every live session's AU estimation on one worker thread, off the event loop.

``Session.push_audio`` resamples, computes log-mel hops and steps CAUSE: about
a millisecond of CPU per 20 ms packet (bench/README.md, ``stages``), too long
to run on the event loop once a few sessions speak at once. The sessions share
one AU runtime, which is not re-entrant (torch's module, TensorRT's execution
context), so the calls are serialized on a single thread.
"""

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class AUWorker:
    """One thread for every session's calls into the AU runtime; :meth:`close` when the process stops.

    Every caller of a shared AU backend (``Session.push_audio`` and
    ``Session.finish`` of every live session) must go through the same worker,
    or two threads may run one runtime at once.
    """

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="au-estimator")

    async def run(self, call: Callable[[], T]) -> T:
        """``call()`` on the worker thread, after the calls submitted before it; its result or exception."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def close(self) -> None:
        """Stop the thread once the calls already submitted have finished."""
        self._executor.shutdown(wait=False, cancel_futures=True)
