"""Timing the engine's real code paths from outside: wrap a function for a while, put it back after.

Nothing in the engine carries a stopwatch for the benchmark. A probe names an
attribute (a method of a class, a method of one object, or a module's
function) and a stage; inside :func:`probed` every call of it adds its wall
time to that stage of a :class:`StageTimer`. The engine's own call sites are
untouched, so what is timed is exactly what runs.
"""

import contextlib
import functools
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Probe:
    """Time every call of ``getattr(owner, attribute)`` as ``stage``."""

    stage: str
    owner: Any
    attribute: str


class StageTimer:
    """Wall milliseconds per stage, summed since the last :meth:`take`."""

    def __init__(self) -> None:
        self._ms: defaultdict[str, float] = defaultdict(float)

    def add(self, stage: str, ms: float) -> None:
        self._ms[stage] += ms

    def take(self) -> dict[str, float]:
        """The sums so far (ms per stage), and start again from zero."""
        taken, self._ms = dict(self._ms), defaultdict(float)
        return taken


@contextlib.contextmanager
def probed(timer: StageTimer, probes: list[Probe]) -> Iterator[None]:
    """Within the block, calls through each probe's attribute add their wall ms to ``timer``."""
    restore: list[Callable[[], None]] = []
    try:
        for probe in probes:
            restore.append(_wrap(timer, probe))
        yield
    finally:
        for undo in reversed(restore):
            undo()


def _wrap(timer: StageTimer, probe: Probe) -> Callable[[], None]:
    owner, name = probe.owner, probe.attribute
    own = vars(owner).get(name, _MISSING) if hasattr(owner, "__dict__") else _MISSING
    original = getattr(owner, name)
    if own is not _MISSING and isinstance(own, staticmethod | classmethod):
        raise TypeError(f"cannot probe {name}: static and class methods are not supported")

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            timer.add(probe.stage, (time.perf_counter() - start) * 1e3)

    setattr(owner, name, timed)

    def undo() -> None:
        if own is _MISSING:
            delattr(owner, name)  # the object's own attribute hid its class's method
        else:
            setattr(owner, name, own)

    return undo


_MISSING = object()
