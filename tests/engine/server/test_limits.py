"""The limits' policy with a driven clock: rates, pending connections, audio pace, idleness, descriptors."""

import asyncio

import numpy as np
import pytest

from engine.server.limits import (
    AUDIO_BURST_S,
    AddressBuckets,
    AudioActivity,
    AudioPacer,
    PendingConnections,
    TokenBucket,
    TooManyPending,
    audio_pieces,
    connection_limit,
)


class Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(10.0, clock=clock)
    assert sum(bucket.take() for _ in range(50)) == 10  # one second's worth at once
    clock.now_s += 0.5
    assert sum(bucket.take() for _ in range(50)) == 5
    clock.now_s += 100.0
    assert sum(bucket.take() for _ in range(50)) == 10  # never more than the burst saved


def test_addresses_have_their_own_buckets_and_old_ones_are_forgotten() -> None:
    clock = Clock()
    buckets = AddressBuckets(2.0, clock=clock, max_addresses=3)
    assert [buckets.take("a") for _ in range(3)] == [True, True, False]
    assert buckets.take("b")  # another address is not affected
    for name in ("c", "d", "e"):
        buckets.take(name)
    assert buckets.take("a") and buckets.take("a")  # "a" was forgotten: a fresh bucket


def test_pending_connections_are_capped_per_address_and_in_all() -> None:
    pending = PendingConnections(limit=3, per_address_limit=2)
    pending.acquire("a")
    pending.acquire("a")
    with pytest.raises(TooManyPending, match="from a"):
        pending.acquire("a")
    pending.acquire("b")
    with pytest.raises(TooManyPending, match="waiting to start a session"):
        pending.acquire("c")
    pending.release("a")
    with pending.holding("c"):
        assert pending.total == 3
    assert pending.by_address == {"a": 1, "b": 1}


def test_audio_is_paced_after_its_burst() -> None:
    clock = Clock()
    pacer = AudioPacer(4.0, clock=clock)
    assert pacer.delay_s(AUDIO_BURST_S) == 0.0
    pacer.audio_s = AUDIO_BURST_S
    assert pacer.delay_s(4.0) == pytest.approx(1.0)  # 4 s more at 4x real time: one second
    clock.now_s += 1.0
    assert pacer.delay_s(4.0) == pytest.approx(0.0)


async def test_admit_waits_for_the_pace() -> None:
    pacer = AudioPacer(50.0, burst_s=0.0)
    loop = asyncio.get_running_loop()
    start_s = loop.time()
    for _ in range(5):
        await pacer.admit(1.0)
    assert loop.time() - start_s >= 4 * 1.0 / 50.0 * 0.9


def test_only_audio_time_keeps_a_session_alive() -> None:
    clock = Clock()
    activity = AudioActivity(10.0, clock=clock)
    for _ in range(100):  # real time: 20 ms every 20 ms
        clock.now_s += 0.02
        activity.add(0.02)
    assert activity.remaining_s() == pytest.approx(12.0)  # covered 2 s ahead, then the idle timeout
    start_s = clock.now_s
    while activity.remaining_s() > 0:  # a keep-alive of one sample every 5 s
        clock.now_s += 5.0
        activity.add(1 / 16000)
    assert clock.now_s - start_s <= 15.0


def test_half_real_time_is_enough() -> None:
    clock = Clock()
    activity = AudioActivity(5.0, clock=clock)
    for _ in range(1000):
        clock.now_s += 0.2
        activity.add(0.1)
    assert activity.remaining_s() > 4.0


def test_long_messages_are_cut_into_short_pieces() -> None:
    samples = np.arange(16_000 * 3).reshape(-1, 1)
    pieces = audio_pieces(samples, 16_000)
    assert len(pieces) == 30 and all(p.shape == (1600, 1) for p in pieces)
    np.testing.assert_array_equal(np.concatenate(pieces), samples)
    assert len(audio_pieces(samples[:100], 16_000)) == 1


def test_the_connection_limit_leaves_descriptors_for_the_sessions() -> None:
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert connection_limit(4, 50) == 50
    limit = connection_limit(4)
    assert 0 < limit < soft
