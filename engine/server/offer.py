"""What a WebRTC offer must contain for a session, checked before any connection is built.

A browser sharing only its microphone offers an audio section it sends
(``sendrecv`` with ``addTrack``, or ``sendonly``) and a video section it
receives (``addTransceiver('video', {direction: 'recvonly'})``), and usually a
data channel. No I/O here: text in, an :class:`OfferError` with a message the
client can act on out.
"""

from aiortc import sdp

from engine.errors import EngineError

MAX_OFFER_BYTES = 64 * 1024
"""Largest offer accepted: a browser's offer with audio, video and a data channel is ~5 KiB."""

_SENDS = ("sendrecv", "sendonly")
_RECEIVES = ("sendrecv", "recvonly")


class OfferError(EngineError, ValueError):
    """The offer cannot start a session (HTTP 400); the message says what is missing."""


def check_offer(text: str) -> None:
    """Raise :class:`OfferError` unless ``text`` is an SDP offer that sends audio and receives video."""
    if len(text.encode()) > MAX_OFFER_BYTES:
        raise OfferError(f"the offer is larger than {MAX_OFFER_BYTES} bytes")
    if not text.lstrip().startswith("v=0"):
        raise OfferError("the offer is not SDP: an SDP description starts with 'v=0'")
    try:
        description = sdp.SessionDescription.parse(text)
    except Exception as exc:  # the parser asserts and indexes: any failure means malformed input
        raise OfferError(f"malformed SDP: {type(exc).__name__} {exc}".rstrip()) from exc
    media = [(m.kind, m.direction or "sendrecv") for m in description.media]
    if not any(kind == "audio" and direction in _SENDS for kind, direction in media):
        raise OfferError(
            "the offer sends no audio: share the microphone (an audio track, direction sendrecv or sendonly)"
        )
    if not any(kind == "video" and direction in _RECEIVES for kind, direction in media):
        raise OfferError(
            "the offer receives no video: add a video transceiver with direction recvonly to see the avatar"
        )
