"""The audio receive path: packets put in order and released on arrival; real aiortc peers on loopback.

The order policy is checked on its own (no clock, no I/O); the receive path
between two real aiortc peers (Opus, SRTP, UDP on loopback), with and
without a network in front of the receiver that reorders and drops packets.
"""

import asyncio
import fractions
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import av
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpCodecParameters, RTCRtpReceiver, RTCRtpTransceiver
from aiortc.codecs import get_encoder
from aiortc.rtp import RtpPacket

from engine.server.jitter import ArrivalAudioReceiver, PacketOrder, Slot, arrival_receiver, reduce_audio_prefetch
from tests.engine.server.webrtc_client import PacedSpeechTrack

RATE_HZ = 48_000
PACKET_SAMPLES = 960
"""One 20 ms Opus packet at 48 kHz: the step between consecutive pts."""


def _released(slots: list[Slot[str]]) -> list[tuple[int, str | None]]:
    return [(slot.sequence, slot.item) for slot in slots]


# -- the order policy ----------------------------------------------------------------------------------------


def test_packets_in_order_are_released_at_once() -> None:
    order: PacketOrder[str] = PacketOrder(max_wait_s=0.02)
    assert _released(order.push(100, "a", 0.0)) == [(100, "a")]
    assert _released(order.push(101, "b", 0.02)) == [(101, "b")]
    assert order.deadline_s is None and order.held_packets == 0


def test_a_reordered_packet_releases_what_waited_behind_it() -> None:
    order: PacketOrder[str] = PacketOrder(max_wait_s=0.02)
    order.push(7, "a", 0.0)
    assert order.push(9, "c", 0.040) == []  # 8 missing: 9 waits
    assert order.deadline_s == pytest.approx(0.060)
    assert order.expire(0.055) == []
    assert _released(order.push(8, "b", 0.045)) == [(8, "b"), (9, "c")]
    assert order.lost_packets == 0 and order.late_packets == 0


def test_a_lost_packet_is_given_up_after_the_wait_and_a_late_one_dropped() -> None:
    order: PacketOrder[str] = PacketOrder(max_wait_s=0.02)
    order.push(7, "a", 0.0)
    order.push(9, "c", 0.040)
    order.push(10, "d", 0.050)
    assert _released(order.expire(0.060)) == [(8, None), (9, "c"), (10, "d")]
    assert order.lost_packets == 1
    assert order.push(8, "b", 0.070) == []  # its place was concealed already
    assert order.push(10, "d", 0.071) == []  # a duplicate
    assert order.late_packets == 2
    assert _released(order.push(11, "e", 0.080)) == [(11, "e")]


def test_each_gap_waits_from_its_own_packet() -> None:
    order: PacketOrder[str] = PacketOrder(max_wait_s=0.02)
    order.push(1, "a", 0.0)
    order.push(3, "c", 0.040)  # 2 missing
    order.push(5, "e", 0.080)  # 4 missing: waits until 0.100, not 0.060
    assert _released(order.expire(0.060)) == [(2, None), (3, "c")]
    assert order.deadline_s == pytest.approx(0.100)
    assert _released(order.push(4, "d", 0.085)) == [(4, "d"), (5, "e")]


def test_sequence_numbers_wrap_at_16_bits() -> None:
    order: PacketOrder[str] = PacketOrder(max_wait_s=0.02)
    order.push(65534, "a", 0.0)
    assert order.push(0, "c", 0.04) == []  # 65535 missing
    assert _released(order.push(65535, "b", 0.05)) == [(65535, "b"), (65536, "c")]
    assert _released(order.push(1, "d", 0.06)) == [(65537, "d")]


def test_too_many_held_packets_give_the_oldest_gap_up_at_once() -> None:
    order: PacketOrder[str] = PacketOrder(max_wait_s=10.0, max_held_packets=2)
    order.push(0, "a", 0.0)
    order.push(2, "c", 0.0)
    order.push(3, "d", 0.0)
    assert _released(order.push(4, "e", 0.0)) == [(1, None), (2, "c"), (3, "d"), (4, "e")]


def test_a_jump_beyond_the_gap_limit_restarts_without_concealment() -> None:
    order: PacketOrder[str] = PacketOrder(max_wait_s=0.02, max_gap_packets=50)
    order.push(0, "a", 0.0)
    order.push(2, "c", 0.01)
    assert _released(order.push(1000, "z", 0.02)) == [(2, "c"), (1000, "z")]
    assert order.lost_packets == 0
    assert _released(order.push(1001, "y", 0.03)) == [(1001, "y")]
    assert _released(order.push(7, "x", 0.04)) == [(7, "x")]  # numbering restarted lower
    assert _released(order.push(8, "w", 0.05)) == [(8, "w")]


def test_order_rejects_bad_settings_and_numbers() -> None:
    with pytest.raises(ValueError, match="max_wait_s"):
        PacketOrder(max_wait_s=-1.0)
    with pytest.raises(ValueError, match="16-bit"):
        PacketOrder[str]().push(70_000, "a", 0.0)


# -- the receive path fed directly --------------------------------------------------------------------------------


def _pcmu_packets(count: int) -> list[bytes]:
    """``count`` 20 ms G.711 mu-law payloads of a 440 Hz tone, encoded by aiortc's own encoder."""
    encoder = get_encoder(RTCRtpCodecParameters(mimeType="audio/PCMU", clockRate=8000, channels=1, payloadType=0))
    tone = (0.3 * 32767 * np.sin(2 * np.pi * 440 * np.arange(160 * count) / 8000)).astype(np.int16)
    payloads: list[bytes] = []
    for k in range(count):
        frame = av.AudioFrame.from_ndarray(tone[None, 160 * k : 160 * (k + 1)], format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 8000, 160 * k, fractions.Fraction(1, 8000)
        payloads += encoder.encode(frame)[0]
    return payloads


async def test_other_codecs_conceal_with_silence_and_a_new_ssrc_continues_the_timeline() -> None:
    codec = RTCRtpCodecParameters(mimeType="audio/PCMU", clockRate=8000, channels=1, payloadType=0)
    frames: list[av.AudioFrame] = []
    path = ArrivalAudioReceiver({0: codec}, frames.append, max_wait_s=0.01)
    payloads = _pcmu_packets(6)

    def packet(
        index: int, ssrc: int = 1111, first_sequence: int = 65533, first_timestamp: int = 2**32 - 320
    ) -> RtpPacket:
        return RtpPacket(
            payload_type=0,
            sequence_number=(first_sequence + index) % 2**16,
            timestamp=(first_timestamp + 160 * index) % 2**32,
            ssrc=ssrc,
            payload=payloads[index],
        )

    for index in (0, 1, 3):  # 2 lost; sequence numbers and timestamps wrap on the way
        assert path.add(packet(index)) == (False, None)
    assert len(frames) == 2 and path.held_packets == 1
    await asyncio.sleep(0.05)
    assert [int(f.pts) for f in frames] == [0, 160, 320, 480]
    assert path.concealed_frames == 1
    assert not frames[2].to_ndarray().any() and frames[3].to_ndarray().any()
    path.add(packet(4, ssrc=2, first_sequence=10, first_timestamp=123_456))  # the sender restarted
    path.add(packet(5, ssrc=2, first_sequence=10, first_timestamp=123_456))
    assert [int(f.pts) for f in frames[4:]] == [640, 800]
    assert path.concealed_frames == 1 and path.late_packets == 0


# -- two real aiortc peers -------------------------------------------------------------------------------------


Impairment = Callable[[int, RtpPacket, Callable[[RtpPacket], Awaitable[None]]], Awaitable[None]]
"""The network in front of the receiver: (packet index from 0, packet, deliver) -> deliver it, later, or never."""


@dataclass
class Received:
    """What the receiving peer's track yielded: each frame's pts, arrival time and mean |sample|."""

    pts: list[int] = field(default_factory=list)
    arrival_s: list[float] = field(default_factory=list)
    level: list[float] = field(default_factory=list)
    frames: list[av.AudioFrame] = field(default_factory=list)


async def _stream_tone(
    *, arrival: bool, seconds: float, impairment: Impairment | None = None
) -> tuple[Received, PacedSpeechTrack, ArrivalAudioReceiver | None]:
    """Send a 220 Hz tone in 20 ms Opus packets from one aiortc peer to another; collect what is decoded."""
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(int(RATE_HZ * (seconds + 2))) / RATE_HZ)
    sender_track = PacedSpeechTrack(tone.astype(np.float32), rate_hz=RATE_HZ)
    sender = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    receiver = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sender.addTrack(sender_track)
    await sender.setLocalDescription(await sender.createOffer())
    await receiver.setRemoteDescription(sender.localDescription)
    transceiver: RTCRtpTransceiver = receiver.getTransceivers()[0]
    if arrival:
        reduce_audio_prefetch(transceiver)
    if impairment is not None:
        _impair(transceiver.receiver, impairment)
    await receiver.setLocalDescription(await receiver.createAnswer())
    await sender.setRemoteDescription(receiver.localDescription)
    track = transceiver.receiver.track
    received = Received()
    try:
        async with asyncio.timeout(seconds + 10):
            while len(received.pts) < seconds * 50:
                frame = await track.recv()
                received.arrival_s.append(time.perf_counter())
                received.pts.append(int(frame.pts))
                received.level.append(float(np.abs(frame.to_ndarray()).mean()))
                received.frames.append(frame)
    finally:
        await sender.close()
        await receiver.close()
    return received, sender_track, arrival_receiver(transceiver)


def _impair(receiver: RTCRtpReceiver, impairment: Impairment) -> None:
    """Put ``impairment`` between the DTLS transport and the receiver (after SRTP, before the jitter buffer)."""
    handle = receiver._handle_rtp_packet
    count = 0

    async def impaired(packet: RtpPacket, arrival_time_ms: int) -> None:
        nonlocal count
        index = count
        count += 1

        async def deliver(late_packet: RtpPacket) -> None:
            await handle(late_packet, arrival_time_ms=arrival_time_ms)

        await impairment(index, packet, deliver)

    receiver._handle_rtp_packet = impaired  # type: ignore[method-assign]


def _latencies_ms(received: Received, sender: PacedSpeechTrack, skip: int = 25) -> list[float]:
    """Send-to-decoded per packet, ms (the pts of a decoded frame is the pts the sender stamped)."""
    return [
        (arrival_s - sender.sent_s[pts]) * 1e3
        for pts, arrival_s in zip(received.pts[skip:], received.arrival_s[skip:])
        if pts in sender.sent_s
    ]


@pytest.mark.slow
@pytest.mark.timeout(40)
async def test_audio_is_decoded_on_arrival() -> None:
    """Send-to-decoded latency of 20 ms Opus packets between two aiortc peers on loopback.

    aiortc's own audio buffer holds four packets (~80 ms), and even with no
    prefetch a packet would wait for the next (~20 ms); released on arrival
    it costs the network, SRTP and the Opus decode (a few ms here, under
    load more: hence the margin). Every packet is decoded, in order.
    """
    default, default_sender, _ = await _stream_tone(arrival=False, seconds=2.5)
    ours, our_sender, path = await _stream_tone(arrival=True, seconds=2.5)
    default_ms = statistics.median(_latencies_ms(default, default_sender))
    ours_ms = _latencies_ms(ours, our_sender)
    p50_ms = statistics.median(ours_ms)
    print(
        f"audio send-to-decoded, p50: aiortc default {default_ms:.1f} ms; on arrival {p50_ms:.2f} ms "
        f"(p95 {np.percentile(ours_ms, 95):.2f} ms)"
    )
    assert path is not None and path.concealed_frames == 0 and path.late_packets == 0
    assert np.all(np.diff(ours.pts) == PACKET_SAMPLES)
    assert ours.frames[0].format.name == "s16" and ours.frames[0].layout.name == "stereo"
    assert ours.frames[0].sample_rate == RATE_HZ
    assert p50_ms < 12.0
    assert default_ms - p50_ms > 60.0


@pytest.mark.slow
@pytest.mark.timeout(40)
async def test_reordered_packets_come_out_in_order_and_a_lost_one_is_concealed() -> None:
    """A network that swaps packets 60 and 61 and drops packet 90, between two real aiortc peers.

    Every 20 ms of the sender's timeline comes out once, in order: the
    swapped pair as soon as the late one arrives, the dropped packet as Opus
    loss concealment (a continuation of the tone, not silence) once the
    packet after it has waited 20 ms.
    """
    swapped_s: dict[str, float] = {}

    async def network(index: int, packet: RtpPacket, deliver: Callable[[RtpPacket], Awaitable[None]]) -> None:
        if index == 60:
            held[0] = packet
            return
        if index == 90:
            return
        await deliver(packet)
        if index == 61:
            swapped_s["sent"] = time.perf_counter()
            await deliver(held[0])

    held: list[RtpPacket] = [RtpPacket()]
    received, sender, path = await _stream_tone(arrival=True, seconds=2.5, impairment=network)
    assert path is not None
    assert np.all(np.diff(received.pts) == PACKET_SAMPLES), "every 20 ms once, in order"
    assert path.concealed_frames == 1 and path.late_packets == 0
    first = received.pts[0]
    lost = received.pts.index(first + 90 * PACKET_SAMPLES)
    tone_level = float(np.median(received.level[30:]))
    print(f"concealed frame level {received.level[lost]:.0f}, the tone's {tone_level:.0f} (mean |s16|)")
    assert received.level[lost] > 0.3 * tone_level
    # The packet after the dropped one waited about the reorder bound (20 ms), not for the next packet.
    after_lost_ms = (received.arrival_s[lost + 1] - sender.sent_s[received.pts[lost + 1]]) * 1e3
    assert after_lost_ms < 20.0 + 25.0
    # The swapped pair came out together, as soon as the late packet arrived.
    pair = received.pts.index(first + 60 * PACKET_SAMPLES)
    assert received.arrival_s[pair] - swapped_s["sent"] < 0.025
    assert received.arrival_s[pair + 1] - received.arrival_s[pair] < 0.010
