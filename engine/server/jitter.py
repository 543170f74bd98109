"""The one place where the engine changes how aiortc receives incoming audio: each packet decoded on arrival.

Why: aiortc's ``RTCRtpReceiver`` puts incoming audio through
``JitterBuffer(capacity=16, prefetch=4)``: a 20 ms Opus packet is released only
once four later packets have arrived (80 ms of audio). Even with
``prefetch=0`` a packet waits for the next one (20 ms more), because that
buffer learns a frame is complete only when a packet with a new timestamp
shows up. That is right for video, whose frames span packets; but every audio
RTP packet (Opus, G.711, G.722) carries whole frames, so it can be decoded the
moment it arrives. We do not play the audio back: we estimate action units
from it, and every millisecond it waits is a millisecond the lips lag the
voice.

What replaces it, per incoming audio track (:class:`ArrivalAudioReceiver`):

- **in order, on arrival**: a packet that is the next in sequence is decoded
  at once, on the event loop (a small fraction of the 20 ms it holds), and put on
  the track aiortc hands out, so ``track.recv()`` works as before and yields
  the same frames (48 kHz stereo s16 for Opus, pts from 0);
- **reordering within a bound**: a packet that arrives after a gap is held
  until the missing one arrives or ``max_wait_s`` (20 ms) has passed since it
  arrived, whichever comes first (:class:`PacketOrder`); a packet arriving
  after its place was given up is dropped;
- **concealment**: each packet given up is replaced by Opus packet loss
  concealment (a packet holding only the previous packet's table-of-contents
  byte: libopus decodes a frame of length 0 as lost and extrapolates), or by
  silence of the previous frame's length for other codecs, so the audio
  timeline the AU estimator sees keeps the sender's duration;
- **resynchronisation**: a jump of more than ``max_gap_packets`` (1 s) or a
  new SSRC is a restarted stream: nothing is concealed across it.

How: aiortc has no public hook, so the receiver's buffer object (a private,
name-mangled attribute) is replaced by one whose ``add()`` decodes and
delivers itself and hands aiortc nothing; aiortc's own decoder thread stays
idle and still ends the track when the receiver stops. That happens right
after ``setRemoteDescription`` created the receiver and negotiated the
codecs, before the first RTP packet can arrive (DTLS is not even connected
then). If a future aiortc moves any of the three private names used here,
:func:`reduce_audio_prefetch` raises instead of silently keeping the delay,
and ``tests/engine/server/test_jitter.py`` measures the effect.
"""

import asyncio
import fractions
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import av
import numpy as np
from aiortc import RTCRtpCodecParameters, RTCRtpTransceiver
from aiortc.codecs import get_decoder
from aiortc.codecs.base import Decoder
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket

REORDER_WAIT_S = 0.020
"""Longest a packet is held waiting for a missing earlier one: one 20 ms packet interval."""

MAX_HELD_PACKETS = 16
"""Packets held behind gaps at most (aiortc's audio capacity); one more gives the oldest gap up at once."""

MAX_GAP_PACKETS = 50
"""A sequence jump larger than this (1 s of 20 ms packets), either way, is a restarted stream: nothing concealed."""

_SEQUENCE_MODULUS = 1 << 16
_TIMESTAMP_MODULUS = 1 << 32

_RECEIVER_BUFFER = "_RTCRtpReceiver__jitter_buffer"
"""aiortc's private attribute holding the receiver's jitter buffer."""

T = TypeVar("T")


@dataclass(frozen=True)
class Slot(Generic[T]):
    """One place in the stream's sequence, released in order: its packet, or None when it was given up as lost."""

    sequence: int
    """Extended sequence number (the 16-bit RTP one, unwrapped; the stream's first packet keeps its own)."""
    item: T | None


class PacketOrder(Generic[T]):
    """Puts one stream's packets in sequence order and releases each as early as that order allows.

    No clock and no I/O: the caller passes arrival times in (seconds, any
    monotonic clock), calls :meth:`expire` once :attr:`deadline_s` has passed,
    and decodes what is released.
    """

    def __init__(
        self,
        *,
        max_wait_s: float = REORDER_WAIT_S,
        max_held_packets: int = MAX_HELD_PACKETS,
        max_gap_packets: int = MAX_GAP_PACKETS,
    ) -> None:
        if max_wait_s < 0 or max_held_packets < 1 or max_gap_packets < 1:
            raise ValueError("max_wait_s must be >= 0, max_held_packets and max_gap_packets >= 1")
        self.max_wait_s = max_wait_s
        self.max_held_packets = max_held_packets
        self.max_gap_packets = max_gap_packets
        self.late_packets = 0
        """Packets dropped because their place had already been released or given up (or duplicates)."""
        self.lost_packets = 0
        """Places given up as lost (released as ``Slot(sequence, None)``)."""
        self._next: int | None = None
        self._highest: int | None = None
        self._held: dict[int, tuple[T, float]] = {}

    @property
    def deadline_s(self) -> float | None:
        """When the oldest packet held behind a gap stops waiting; None when nothing is held."""
        if not self._held:
            return None
        return min(arrival_s for _, arrival_s in self._held.values()) + self.max_wait_s

    @property
    def held_packets(self) -> int:
        return len(self._held)

    def push(self, sequence_number: int, item: T, arrival_s: float) -> list[Slot[T]]:
        """Take a packet (16-bit RTP sequence number); returns the slots it releases, in order (maybe none)."""
        sequence = self._extend(sequence_number)
        if self._next is None:
            self._next = sequence
        if abs(sequence - self._next) > self.max_gap_packets:  # the sender restarted its numbering
            released = self._release_held_without_gaps()
            self._next = self._highest = sequence
            return released + self._push_in_order(sequence, item)
        if sequence < self._next or sequence in self._held:
            self.late_packets += 1
            return []
        if sequence == self._next:
            return self._push_in_order(sequence, item)
        self._held[sequence] = (item, arrival_s)
        if len(self._held) > self.max_held_packets:
            return self._give_up_to(min(self._held))
        return []

    def expire(self, now_s: float) -> list[Slot[T]]:
        """Give up the gaps in front of every packet that has waited ``max_wait_s``; returns what that releases."""
        released: list[Slot[T]] = []
        while (deadline_s := self.deadline_s) is not None and deadline_s <= now_s:
            released += self._give_up_to(min(self._held))
        return released

    def _extend(self, sequence_number: int) -> int:
        """The extended sequence number nearest the highest seen so far (RTP sequence numbers wrap at 2**16)."""
        if not 0 <= sequence_number < _SEQUENCE_MODULUS:
            raise ValueError(f"RTP sequence numbers are 16-bit, got {sequence_number}")
        if self._highest is None:
            self._highest = sequence_number
            return sequence_number
        step = (sequence_number - self._highest) % _SEQUENCE_MODULUS
        if step >= _SEQUENCE_MODULUS // 2:
            step -= _SEQUENCE_MODULUS
        extended = self._highest + step
        self._highest = max(self._highest, extended)
        return extended

    def _push_in_order(self, sequence: int, item: T) -> list[Slot[T]]:
        released = [Slot(sequence, item)]
        self._next = sequence + 1
        while self._next in self._held:
            held_item, _ = self._held.pop(self._next)
            released.append(Slot(self._next, held_item))
            self._next += 1
        return released

    def _give_up_to(self, sequence: int) -> list[Slot[T]]:
        assert self._next is not None
        lost = [Slot[T](missing, None) for missing in range(self._next, sequence)]
        self.lost_packets += len(lost)
        item, _ = self._held.pop(sequence)
        return lost + self._push_in_order(sequence, item)

    def _release_held_without_gaps(self) -> list[Slot[T]]:
        released = [Slot(sequence, self._held[sequence][0]) for sequence in sorted(self._held)]
        self._held.clear()
        return released


class ArrivalAudioReceiver:
    """Stands in for an audio receiver's jitter buffer: decodes each packet as soon as its turn comes.

    aiortc calls :meth:`add` on the event loop for every RTP packet of a
    negotiated payload type; decoded frames go to ``deliver`` (in sequence
    order, pts in the codec's clock from 0, as aiortc's own path stamps them).
    """

    def __init__(
        self,
        codecs: dict[int, RTCRtpCodecParameters],
        deliver: Callable[[av.AudioFrame], None],
        *,
        max_wait_s: float = REORDER_WAIT_S,
    ) -> None:
        """``codecs``: the negotiated codecs by payload type; ``deliver``: takes each decoded frame, in order."""
        self._codecs = codecs
        self._deliver = deliver
        self._max_wait_s = max_wait_s
        self._order: PacketOrder[RtpPacket] = PacketOrder(max_wait_s=max_wait_s)
        self._ssrc: int | None = None
        self._decoders: dict[int, Decoder] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at_s: float | None = None
        self._raw_timestamp: int | None = None
        self._timestamp = 0
        """Extended RTP timestamp of the last frame released, counted from the stream's first."""
        self._last: tuple[RTCRtpCodecParameters, bytes, av.AudioFrame] | None = None
        """Codec, payload and decoded frame of the last packet decoded: what concealment continues from."""
        self._late_before = 0
        self.concealed_frames = 0
        """Frames made up for packets given up as lost."""
        self.undecodable_packets = 0

    @property
    def late_packets(self) -> int:
        """Packets dropped because they came after their place was released or given up (or twice)."""
        return self._late_before + self._order.late_packets

    @property
    def held_packets(self) -> int:
        """Packets waiting now behind a gap in the sequence."""
        return self._order.held_packets

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        """aiortc's call per received packet: decode and deliver what it releases; aiortc gets nothing to decode.

        Returns aiortc's ``(picture_loss, frame)`` pair: never a picture loss (audio), never a frame.
        """
        loop = asyncio.get_running_loop()
        if packet.ssrc != self._ssrc:
            if self._ssrc is not None:
                self._restart_stream()
            self._ssrc = packet.ssrc
        self._release(self._order.push(packet.sequence_number, packet, loop.time()))
        self._schedule_expiry(loop)
        return False, None

    def _on_deadline(self) -> None:
        self._timer = self._timer_at_s = None
        loop = asyncio.get_running_loop()
        self._release(self._order.expire(loop.time()))
        self._schedule_expiry(loop)

    def _schedule_expiry(self, loop: asyncio.AbstractEventLoop) -> None:
        deadline_s = self._order.deadline_s
        if deadline_s == self._timer_at_s:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_at_s = None
        if deadline_s is not None:
            self._timer = loop.call_at(deadline_s, self._on_deadline)
            self._timer_at_s = deadline_s

    def _restart_stream(self) -> None:
        """A new SSRC: what the old stream still held goes out as it is; the new one continues its timeline."""
        held = self._order.expire(float("inf"))
        self._release([slot for slot in held if slot.item is not None])
        self._late_before += self._order.late_packets
        self._order = PacketOrder(max_wait_s=self._max_wait_s)
        self._raw_timestamp = None  # the new stream's first packet follows the old stream's last frame:
        if self._last is not None:
            codec, _, frame = self._last
            self._timestamp += _duration_ticks(codec, frame)

    def _release(self, slots: list[Slot[RtpPacket]]) -> None:
        for slot in slots:
            if slot.item is None:
                self._conceal()
            else:
                self._decode(slot.item)

    def _decode(self, packet: RtpPacket) -> None:
        codec = self._codecs.get(packet.payload_type)
        if codec is None:  # aiortc drops unnegotiated payload types before us; keep the timeline anyway
            self.undecodable_packets += 1
            return
        timestamp = self._next_timestamp(packet.timestamp)
        frames = self._run_decoder(codec, packet.payload, timestamp)
        if frames:
            self._last = (codec, packet.payload, frames[-1])
        else:
            self.undecodable_packets += 1

    def _conceal(self) -> None:
        if self._last is None:  # nothing decoded yet: nothing to continue from
            return
        codec, payload, frame = self._last
        timestamp = self._timestamp + _duration_ticks(codec, frame)
        self._timestamp = timestamp
        if self._raw_timestamp is not None:
            self._raw_timestamp = (self._raw_timestamp + _duration_ticks(codec, frame)) % _TIMESTAMP_MODULUS
        self.concealed_frames += 1
        if codec.name.lower() == "opus" and payload:
            # The table-of-contents byte alone (frame count code 0): one frame of length 0, which libopus
            # decodes as lost, extrapolating from its state for the duration that byte declares.
            if self._run_decoder(codec, bytes([payload[0] & 0xFC]), timestamp):
                return
        silence = av.AudioFrame.from_ndarray(
            np.zeros_like(frame.to_ndarray()), format=frame.format.name, layout=frame.layout.name
        )
        silence.sample_rate = frame.sample_rate
        silence.pts = timestamp
        silence.time_base = fractions.Fraction(1, codec.clockRate)  # as aiortc's decoders stamp their frames
        self._deliver(silence)

    def _next_timestamp(self, raw_timestamp: int) -> int:
        """Extend a 32-bit RTP timestamp from the last one released (packets leave in order)."""
        if self._raw_timestamp is not None:
            step = (raw_timestamp - self._raw_timestamp) % _TIMESTAMP_MODULUS
            if step >= _TIMESTAMP_MODULUS // 2:
                step -= _TIMESTAMP_MODULUS
            self._timestamp += step
        self._raw_timestamp = raw_timestamp
        return self._timestamp

    def _run_decoder(self, codec: RTCRtpCodecParameters, payload: bytes, timestamp: int) -> list[av.AudioFrame]:
        assert codec.payloadType is not None
        decoder = self._decoders.get(codec.payloadType)
        if decoder is None:
            decoder = self._decoders[codec.payloadType] = get_decoder(codec)
        try:
            frames = decoder.decode(JitterFrame(data=payload, timestamp=timestamp))
        except av.FFmpegError:
            return []
        audio = [frame for frame in frames if isinstance(frame, av.AudioFrame)]
        for frame in audio:
            self._deliver(frame)
        return audio


def _duration_ticks(codec: RTCRtpCodecParameters, frame: av.AudioFrame) -> int:
    """A decoded frame's duration in RTP clock ticks (G.722 decodes 16 kHz on an 8 kHz RTP clock)."""
    return int(frame.samples) * codec.clockRate // int(frame.sample_rate)


def reduce_audio_prefetch(transceiver: RTCRtpTransceiver) -> None:
    """Make an audio transceiver's receiver decode and hand on each packet the moment its turn comes.

    Call it right after ``setRemoteDescription`` (the codecs are negotiated
    then) and before media flows. ``transceiver.receiver.track.recv()`` then
    yields the same frames as before, without waiting for later packets.
    Video receivers are left alone: their buffer assembles multi-packet frames.

    Raises:
        ValueError: ``transceiver`` is not an audio transceiver.
        RuntimeError: this aiortc version keeps its buffer, codecs or track queue elsewhere.
    """
    if transceiver.kind != "audio":
        raise ValueError(f"reduce_audio_prefetch() applies to audio transceivers only, got {transceiver.kind}")
    receiver = transceiver.receiver
    track = receiver.track
    queue = getattr(track, "_queue", None)
    codecs = getattr(transceiver, "_codecs", None)
    if (
        not isinstance(getattr(receiver, _RECEIVER_BUFFER, None), JitterBuffer)
        or not isinstance(queue, asyncio.Queue)
        or not isinstance(codecs, list)
    ):
        raise RuntimeError(
            f"aiortc's receiver no longer keeps its jitter buffer in {_RECEIVER_BUFFER}, its track's queue in "
            "_queue or the negotiated codecs in RTCRtpTransceiver._codecs; update engine/server/jitter.py for "
            "this aiortc version"
        )

    def deliver(frame: av.AudioFrame) -> None:
        if track.readyState == "live":  # after aiortc ended the track, nobody reads its queue
            queue.put_nowait(frame)

    by_payload_type = {codec.payloadType: codec for codec in codecs if codec.payloadType is not None}
    setattr(receiver, _RECEIVER_BUFFER, ArrivalAudioReceiver(by_payload_type, deliver))


def arrival_receiver(transceiver: RTCRtpTransceiver) -> ArrivalAudioReceiver | None:
    """The transceiver's :class:`ArrivalAudioReceiver` if :func:`reduce_audio_prefetch` installed one (tests, stats)."""
    path = getattr(transceiver.receiver, _RECEIVER_BUFFER, None)
    return path if isinstance(path, ArrivalAudioReceiver) else None
