"""The scheduler's decisions without I/O: which requests to render together, and when.

Nothing here reads a clock, sleeps or touches a thread: the caller passes the
time in (seconds on the scheduler's clock) and carries the decisions out, so
tests drive every policy with a fake clock.

Policy:

- **One slot per session.** A session holds at most one pending request; a new
  one replaces it (the old one is handed back to be resolved as dropped). Memory
  is bounded by the number of sessions, and a session that falls behind skips
  to its newest frame instead of queueing latency.
- **Earliest deadline first,** at most ``max_batch`` requests per batch. A slot
  is ordered by the earliest deadline of the requests it has held since its
  session was last served, not by its newest request's: replacing a request
  never sends a session to the back of the line. With deadlines set as arrival
  plus one fixed budget, a slot is therefore overtaken only by slots filled
  before it, each at most once, and is served within
  ``ceil(sessions / max_batch)`` batches: no starvation.
- **Batching window.** Once a slot is filled, the batch waits up to
  ``batch_window_s`` (counted from the oldest pending slot) for other sessions'
  frames, but never past the earliest deadline minus the estimated render time
  of the batch, and not at all once ``max_batch`` requests are pending.
- **Late drops.** A request whose deadline passed more than ``late_drop_s`` ago
  when a batch is planned is expired, not rendered: even an instant render
  would show it too late, and its cost would delay sessions still on time. The
  render-time estimate is deliberately left out of this test: with a backend
  slower than the deadline budget, every fresh request would be judged
  hopeless and nothing would ever be rendered; this way each session's newest
  frame is still rendered, late.
"""

import itertools
from collections.abc import Hashable
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from engine.scheduler.render_time import RenderTimeEstimator

T = TypeVar("T")


@dataclass(frozen=True)
class Pending(Generic[T]):
    """A session's slot: its newest request, waiting to be rendered.

    session_id: the session the request belongs to.
    item: the caller's request; opaque here.
    deadline_s: the newest request's own deadline: lateness and late drops are
        judged on it.
    priority_s: the earliest deadline of all requests this slot has held;
        batches are chosen in its order.
    waiting_since_s: when the slot was filled; the batching window counts from here.
    arrival_order: breaks ties between equal priorities, first come first served.
    """

    session_id: Hashable
    item: T
    deadline_s: float
    priority_s: float
    waiting_since_s: float
    arrival_order: int


@dataclass(frozen=True)
class Batch(Generic[T]):
    """What to do now: render ``slots`` together (earliest deadline first), resolve ``expired`` unrendered."""

    slots: list[Pending[T]]
    expired: list[Pending[T]]


class BatchPlanner(Generic[T]):
    """Holds the pending requests of all sessions and plans the next batch (see the module docstring)."""

    def __init__(
        self,
        estimator: RenderTimeEstimator,
        *,
        max_batch: int,
        batch_window_s: float,
        late_drop_s: float,
    ) -> None:
        """``estimator`` is read, never fed, here: whoever renders reports the measured times to it.

        ``late_drop_s`` may be ``math.inf`` (never drop for lateness).
        """
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if batch_window_s < 0 or late_drop_s < 0:
            raise ValueError(f"batch_window_s and late_drop_s must be >= 0, got {batch_window_s} and {late_drop_s}")
        self.estimator = estimator
        self.max_batch = max_batch
        self.batch_window_s = batch_window_s
        self.late_drop_s = late_drop_s
        self._slots: dict[Hashable, Pending[T]] = {}
        self._arrivals = itertools.count()

    @property
    def pending_count(self) -> int:
        """Requests waiting to be rendered: at most one per session."""
        return len(self._slots)

    def submit(self, session_id: Hashable, item: T, *, deadline_s: float, now_s: float) -> T | None:
        """Make ``item`` its session's pending request; return the request it replaced, if any."""
        previous = self._slots.get(session_id)
        if previous is None:
            self._slots[session_id] = Pending(session_id, item, deadline_s, deadline_s, now_s, next(self._arrivals))
            return None
        self._slots[session_id] = replace(
            previous, item=item, deadline_s=deadline_s, priority_s=min(previous.priority_s, deadline_s)
        )
        return previous.item

    def forget(self, session_id: Hashable) -> T | None:
        """Remove a session's pending request (the session ended) and return it, if any."""
        slot = self._slots.pop(session_id, None)
        return None if slot is None else slot.item

    def drain(self) -> list[T]:
        """Remove and return every pending request (shutting down)."""
        items = [slot.item for slot in self._slots.values()]
        self._slots.clear()
        return items

    def due_s(self) -> float | None:
        """When the next batch should start, in seconds (maybe already past); None if nothing is pending."""
        if not self._slots:
            return None
        slots = self._slots.values()
        first_waiting_s = min(slot.waiting_since_s for slot in slots)
        if len(self._slots) >= self.max_batch:
            return first_waiting_s
        window_end_s = first_waiting_s + self.batch_window_s
        latest_start_s = min(slot.deadline_s for slot in slots) - self.estimator.estimate_s(len(self._slots))
        return min(window_end_s, latest_start_s)

    def take_batch(self, now_s: float) -> Batch[T]:
        """Remove and return the next batch and the requests too late to render (call at ``due_s()``)."""
        expired = [slot for slot in self._slots.values() if now_s > slot.deadline_s + self.late_drop_s]
        for slot in expired:
            del self._slots[slot.session_id]
        by_deadline = sorted(self._slots.values(), key=lambda slot: (slot.priority_s, slot.arrival_order))
        chosen = by_deadline[: self.max_batch]
        for slot in chosen:
            del self._slots[slot.session_id]
        return Batch(chosen, expired)
