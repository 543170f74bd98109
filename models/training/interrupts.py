"""Ctrl-C and SIGTERM as requests to stop cleanly: a training loop saves a checkpoint, then ends.

Inside :func:`stop_requests` the first SIGINT or SIGTERM sets a flag instead
of killing the process, so the loop can finish its step and write what it has;
a second one interrupts at once as usual (a stuck save can still be killed).
Outside the main thread (where Python cannot install handlers) nothing changes.
"""

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Which signal asked the run to stop, if any."""

    def __init__(self) -> None:
        self.signal_name: str | None = None

    def __bool__(self) -> bool:
        return self.signal_name is not None


@contextmanager
def stop_requests() -> Iterator[StopRequest]:
    """Catch SIGINT and SIGTERM while the block runs; the old handlers come back after it."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}

    def on_signal(number: int, frame: FrameType | None) -> None:
        if request:  # the second time: stop now
            raise KeyboardInterrupt
        request.signal_name = signal.Signals(number).name

    for sig in SIGNALS:
        signal.signal(sig, on_signal)
    try:
        yield request
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
