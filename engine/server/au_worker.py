"""Runs every live session's AU estimation on one worker thread, off the event loop.

``Session.push_audio`` resamples, computes log-mel hops and steps CAUSE: about
1 ms of CPU per 20 ms packet with the default weights on the dev machine while
four simulated sessions ran (0.3 resampling, 0.2 mel, 0.4 CAUSE), too long to
run on the event loop once a few sessions speak at once. The sessions share
one AU runtime, which is not re-entrant (torch's module, TensorRT's execution
context), so the calls are serialized on a single thread.
"""

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from aiohttp import web

T = TypeVar("T")


class AUWorker:
    """One thread for every session's calls into the AU runtime; :meth:`close` when the server stops.

    Every caller of the shared ``EngineContext.au_backend`` (``Session.push_audio``
    and ``Session.finish``, of WebRTC and WebSocket sessions alike) must go
    through the same worker, or two threads may run one runtime at once
    (torch's module or TensorRT's execution context are not re-entrant).
    """

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="au-estimator")

    async def run(self, call: Callable[[], T]) -> T:
        """``call()`` on the worker thread, after the calls submitted before it; its result or exception.

        E.g. ``await worker.run(lambda: session.push_audio(samples, arrival_s=arrival_s))``.
        """
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def close(self) -> None:
        """Stop the thread once the calls already submitted have finished."""
        self._executor.shutdown(wait=False, cancel_futures=True)


AU_WORKER = web.AppKey("au_worker", AUWorker)
"""Where the server app keeps its AUWorker: ``request.app[AU_WORKER]`` (set by ``create_app``)."""
