"""The one place where the engine changes aiortc's incoming-audio jitter buffer.

Why: aiortc's ``RTCRtpReceiver`` holds incoming audio in
``JitterBuffer(capacity=16, prefetch=4)``: a 20 ms Opus packet is released only
once four later packets have arrived, about 80 ms of delay (measured here, two
peers on loopback: p50 82 ms send-to-decoded). That depth is meant for smooth
*playback*. We do not play the audio back: we estimate action units from it,
and every millisecond it waits is a millisecond the lips lag the voice. With
``prefetch=0`` a packet is released as soon as the next one arrives (the
buffer only knows a frame is complete when a packet with a new timestamp
shows up), about 21 ms (p50); late or reordered packets are still put in
order within the 16-packet capacity, and a lost one costs one 20 ms gap in
the AU stream, which the network tolerates.

How: aiortc has no public option, so the buffer object is replaced right after
``setRemoteDescription`` created the receiver and before the first RTP packet
can arrive (DTLS is not even connected then). The attribute is private
(name-mangled); if a future aiortc renames it, :func:`reduce_audio_prefetch`
raises instead of silently keeping the 80 ms, and
``tests/engine/server/test_webrtc.py`` measures the effect.
"""

from aiortc import RTCRtpTransceiver
from aiortc.jitterbuffer import JitterBuffer

AUDIO_JITTER_CAPACITY_PACKETS = 16
"""Packets the audio buffer can hold for reordering (aiortc's own value; a power of 2)."""

AUDIO_PREFETCH_PACKETS = 0
"""Complete packets held back before release: aiortc's default is 4 (~80 ms at 20 ms per packet)."""

_PRIVATE_ATTRIBUTE = "_RTCRtpReceiver__jitter_buffer"


def reduce_audio_prefetch(transceiver: RTCRtpTransceiver) -> None:
    """Make an audio transceiver's receiver release each packet without waiting for four more.

    Call it before media flows (right after ``setRemoteDescription``). Video
    receivers are left alone: their buffer assembles multi-packet frames.

    Raises:
        ValueError: ``transceiver`` is not an audio transceiver.
        RuntimeError: this aiortc version has no such buffer where expected.
    """
    if transceiver.kind != "audio":
        raise ValueError(f"reduce_audio_prefetch() applies to audio transceivers only, got {transceiver.kind}")
    receiver = transceiver.receiver
    if not isinstance(getattr(receiver, _PRIVATE_ATTRIBUTE, None), JitterBuffer):
        raise RuntimeError(
            "aiortc's RTCRtpReceiver no longer keeps its jitter buffer in "
            f"{_PRIVATE_ATTRIBUTE}; update engine/server/jitter.py for this aiortc version"
        )
    setattr(
        receiver,
        _PRIVATE_ATTRIBUTE,
        JitterBuffer(capacity=AUDIO_JITTER_CAPACITY_PACKETS, prefetch=AUDIO_PREFETCH_PACKETS),
    )


def audio_prefetch_packets(transceiver: RTCRtpTransceiver) -> int:
    """The prefetch depth of a transceiver's receive jitter buffer, in packets (for tests)."""
    buffer = getattr(transceiver.receiver, _PRIVATE_ATTRIBUTE)
    return int(buffer._prefetch)
