"""Bounded, fair use of the server by each client: rates, pending connections, audio speed, idleness.

Policy only, no I/O: the transports (``websocket.py``, ``webrtc_sessions.py``)
ask these objects whether to go on, and say what they refused. Every clock is
injected (seconds, ``time.monotonic`` by default) so that tests drive time.

- :class:`TokenBucket`: a rate with a burst; a connection's messages (pings
  included) and each client address's, summed.
- :class:`PendingConnections`: connections that hold something but are not a
  session yet (a WebSocket before its hello, a WebRTC session before ICE
  connects), counted per client address and in all.
- :class:`AudioPacer`: a session's audio is taken at most ``max_speed`` times
  faster than real time; the sender waits (TCP pushes back), so one fast client
  cannot take the shared AU thread from the others.
- :class:`AudioActivity`: when a session is idle; only audio time counts, so
  empty or tiny keep-alive messages do not hold a slot.
"""

import asyncio
import resource
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

Clock = Callable[[], float]

BURST_FACTOR = 1.0
"""A token bucket holds this many seconds' worth of its rate (a burst of 1 s at the full rate)."""
MAX_TRACKED_ADDRESSES = 4096
"""Per-address buckets kept at most (least recently used forgotten first): bounded memory under a spoofed flood."""
AUDIO_BURST_S = 5.0
"""Audio a session may send ahead of its pace before it is slowed, seconds (a client's buffer, a fast start)."""
MIN_AUDIO_RATIO = 0.5
"""A session that receives less than this fraction of real time in audio is idle."""
AUDIO_COVER_AHEAD_S = 2.0
"""Audio sent ahead counts against idleness for at most this long, seconds."""
MAX_CHUNK_S = 0.1
"""Longer audio messages are fed to the shared AU thread in pieces of this many seconds, so that it takes turns."""
DESCRIPTORS_PER_SESSION = 16
"""File descriptors a WebRTC session may use besides its TCP connection (UDP sockets per interface, threads)."""
DESCRIPTOR_RESERVE = 64
"""Descriptors kept for the process itself (model files, logs, the listening sockets, imports)."""


class TokenBucket:
    """``rate_per_s`` tokens per second, at most ``burst`` saved; :meth:`take` says whether one is left."""

    def __init__(self, rate_per_s: float, *, burst: float | None = None, clock: Clock = time.monotonic) -> None:
        if rate_per_s <= 0:
            raise ValueError(f"rate must be positive, got {rate_per_s}")
        self.rate_per_s = rate_per_s
        self.burst = burst if burst is not None else BURST_FACTOR * rate_per_s
        self._clock = clock
        self._tokens = self.burst
        self._updated_s = clock()

    def take(self, tokens: float = 1.0) -> bool:
        """Spend ``tokens`` if there are that many; False (nothing spent) if not."""
        self._refill()
        if self._tokens < tokens:
            return False
        self._tokens -= tokens
        return True

    def delay_s(self, tokens: float = 1.0) -> float:
        """Seconds until ``tokens`` are there (0: now); nothing is spent."""
        self._refill()
        return max(0.0, (tokens - self._tokens) / self.rate_per_s)

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated_s) * self.rate_per_s)
        self._updated_s = now


class AddressBuckets:
    """One :class:`TokenBucket` per client address, the least recently used forgotten past a bound."""

    def __init__(self, rate_per_s: float, *, clock: Clock = time.monotonic, max_addresses: int = MAX_TRACKED_ADDRESSES):
        self.rate_per_s = rate_per_s
        self._clock = clock
        self._max = max_addresses
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, address: str) -> bool:
        return self._bucket(address).take()

    def delay_s(self, address: str) -> float:
        """Seconds until ``address`` may spend a token (0: now)."""
        return self._bucket(address).delay_s()

    def _bucket(self, address: str) -> TokenBucket:
        bucket = self._buckets.pop(address, None) or TokenBucket(self.rate_per_s, clock=self._clock)
        self._buckets[address] = bucket
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
        return bucket


class TooManyPending(Exception):
    """Refused: too many connections not yet in a session (HTTP 429)."""


@dataclass
class PendingConnections:
    """Connections not in a session yet, per client address and in all (see the module docstring)."""

    limit: int
    per_address_limit: int
    by_address: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.by_address.values())

    def acquire(self, address: str) -> None:
        """Count one more for ``address``, or raise :class:`TooManyPending`."""
        if self.by_address.get(address, 0) >= self.per_address_limit:
            raise TooManyPending(
                f"too many connections from {address} that have not started a session "
                f"({self.per_address_limit} at most); finish or close them first"
            )
        if self.total >= self.limit:
            raise TooManyPending(f"too many connections waiting to start a session ({self.limit}); try again later")
        self.by_address[address] = self.by_address.get(address, 0) + 1

    def release(self, address: str) -> None:
        count = self.by_address.get(address, 0) - 1
        if count > 0:
            self.by_address[address] = count
        else:
            self.by_address.pop(address, None)

    @contextmanager
    def holding(self, address: str) -> Iterator[None]:
        """Count ``address`` for the duration of the block."""
        self.acquire(address)
        try:
            yield
        finally:
            self.release(address)


class AudioPacer:
    """Lets a session's audio in at most ``max_speed`` x real time, after a burst of ``burst_s``."""

    def __init__(self, max_speed: float, *, burst_s: float = AUDIO_BURST_S, clock: Clock = time.monotonic) -> None:
        if max_speed <= 0:
            raise ValueError(f"max audio speed must be positive, got {max_speed}")
        self.max_speed = max_speed
        self.burst_s = burst_s
        self._clock = clock
        self._started_s: float | None = None
        self.audio_s = 0.0
        """Seconds of audio admitted so far."""

    def delay_s(self, duration_s: float) -> float:
        """How long to wait before ``duration_s`` more seconds of audio may go in (0: now)."""
        now = self._clock()
        if self._started_s is None:
            self._started_s = now
        allowed_s = self.burst_s + (now - self._started_s) * self.max_speed
        return max(0.0, (self.audio_s + duration_s - allowed_s) / self.max_speed)

    async def admit(self, duration_s: float) -> float:
        """Wait until ``duration_s`` seconds of audio may go in, then count it; returns the wait, seconds."""
        wait_s = self.delay_s(duration_s)
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        self.audio_s += duration_s
        return wait_s


class AudioActivity:
    """When a session counts as idle: audio covers wall time, at ``MIN_AUDIO_RATIO`` of real time at least.

    Each chunk of ``d`` seconds covers ``d / MIN_AUDIO_RATIO`` seconds of wall
    time, ahead of the clock by at most ``AUDIO_COVER_AHEAD_S``; the session is
    idle ``idle_timeout_s`` after its cover ends. A real-time stream (silence
    included) stays covered; an empty message or a few samples now and then do
    not move the cover, so they cannot keep a slot.
    """

    def __init__(self, idle_timeout_s: float, *, clock: Clock = time.monotonic) -> None:
        self.idle_timeout_s = idle_timeout_s
        self._clock = clock
        self._covered_until_s = clock()

    def add(self, duration_s: float) -> None:
        """``duration_s`` seconds of audio arrived now."""
        now = self._clock()
        self._covered_until_s = min(self._covered_until_s + duration_s / MIN_AUDIO_RATIO, now + AUDIO_COVER_AHEAD_S)

    @property
    def deadline_s(self) -> float:
        """The clock time at which the session becomes idle unless more audio comes."""
        return self._covered_until_s + self.idle_timeout_s

    def remaining_s(self) -> float:
        """Seconds until idle (<= 0: idle now)."""
        return self.deadline_s - self._clock()


def audio_pieces(samples: np.ndarray, rate_hz: int, max_piece_s: float = MAX_CHUNK_S) -> list[np.ndarray]:
    """``samples`` ((n, channels) rows) cut into pieces of at most ``max_piece_s`` seconds, in order."""
    step = max(1, int(rate_hz * max_piece_s))
    if samples.shape[0] <= step:
        return [samples]
    return [samples[start : start + step] for start in range(0, samples.shape[0], step)]


def connection_limit(max_sessions: int, configured: int | None = None) -> int:
    """Most TCP connections to hold at once: ``configured``, else what the descriptor limit leaves.

    Beyond it, new connections are closed as soon as they are accepted, so that
    accepting never fails with "too many open files" and the sessions running
    keep the descriptors they need (WebRTC sessions use several each).
    """
    if configured is not None:
        return configured
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(1, soft - DESCRIPTOR_RESERVE - DESCRIPTORS_PER_SESSION * max_sessions)
