"""What a WebRTC offer must contain for a session, checked before any connection is built.

A browser sharing only its microphone offers an audio section it sends
(``sendrecv`` with ``addTrack``, or ``sendonly``) and a video section it
receives (``addTransceiver('video', {direction: 'recvonly'})``), and usually a
data channel. No I/O here: text in, an :class:`OfferError` with a message the
client can act on out.
"""

import json
import re
from dataclasses import dataclass
from typing import Any

from aiortc import sdp

from engine.errors import EngineError

MAX_OFFER_BYTES = 64 * 1024
"""Largest offer accepted: a browser's offer with audio, video and a data channel is ~5 KiB."""

_SENDS = ("sendrecv", "sendonly")
_RECEIVES = ("sendrecv", "recvonly")
_LINE = re.compile(r"[a-z]=.*")
_MEDIA_LINE = re.compile(r"m=([^ ]+) ([0-9]+) ([A-Z/]+) (.+)")
_RTCP_PAYLOAD_TYPES = range(72, 77)
"""RTP payload types that collide with RTCP packet types (RFC 5761 4)."""
_CONNECTION_LINE = re.compile(r"c=IN (IP4|IP6) [^ ]+")


class OfferError(EngineError, ValueError):
    """The offer cannot start a session (HTTP 400); the message says what is missing."""


@dataclass(frozen=True)
class JsonOffer:
    """The page's ``POST /offer`` body: the SDP offer, and whether it wants its voice back."""

    sdp: str
    voice: bool = False


def parse_json_offer(text: str) -> JsonOffer:
    """``{"sdp": "...", "type": "offer", "voice": false}`` -> :class:`JsonOffer`; OfferError naming what is wrong."""
    try:
        body: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OfferError(f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise OfferError("the body nests JSON too deeply") from None
    if not isinstance(body, dict) or body.get("type") != "offer" or not isinstance(body.get("sdp"), str):
        raise OfferError('expected a JSON object {"sdp": "<SDP offer>", "type": "offer"}')
    voice = body.get("voice", False)
    if not isinstance(voice, bool):
        raise OfferError("voice must be true or false")
    return JsonOffer(body["sdp"], voice)


def check_offer(text: str) -> None:
    """Raise :class:`OfferError` unless ``text`` is an SDP offer that sends audio and receives video."""
    if len(text.encode()) > MAX_OFFER_BYTES:
        raise OfferError(f"the offer is larger than {MAX_OFFER_BYTES} bytes")
    if not text.lstrip().startswith("v=0"):
        raise OfferError("the offer is not SDP: an SDP description starts with 'v=0'")
    _check_lines(text)
    try:
        description = sdp.SessionDescription.parse(text)
    except Exception as exc:  # the parser asserts and indexes: any failure means malformed input
        detail = f": {exc}" if str(exc) else ""
        raise OfferError(
            f"malformed SDP: an attribute line cannot be read ({type(exc).__name__}{detail}); "
            "check the a=rtpmap, a=fmtp, a=extmap, a=ssrc, a=setup and a=candidate lines"
        ) from None
    for section in description.media:
        if section.port == 0:
            continue  # a rejected section needs no transport
        if section.dtls is None or not section.dtls.fingerprints:
            raise OfferError(
                f"the offer's {section.kind} section has no a=fingerprint: WebRTC media is encrypted with DTLS, "
                "and the answer must know the client's certificate"
            )
        if section.ice is None or not section.ice.usernameFragment or not section.ice.password:
            raise OfferError(f"the offer's {section.kind} section has no a=ice-ufrag and a=ice-pwd (ICE credentials)")
    media = [(m.kind, m.direction or "sendrecv") for m in description.media]
    if not any(kind == "audio" and direction in _SENDS for kind, direction in media):
        raise OfferError(
            "the offer sends no audio: share the microphone (an audio track, direction sendrecv or sendonly)"
        )
    if not any(kind == "video" and direction in _RECEIVES for kind, direction in media):
        raise OfferError(
            "the offer receives no video: add a video transceiver with direction recvonly to see the avatar"
        )


def _check_lines(text: str) -> None:
    """Refuse, naming the line, what the SDP grammar (RFC 8866) does not allow and aiortc's parser asserts on."""
    for number, line in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        if not line:
            continue
        if not _LINE.fullmatch(line):
            raise OfferError(f"malformed SDP: line {number} is not '<letter>=<value>': {line[:60]!r}")
        if line.startswith("m=") and not _MEDIA_LINE.fullmatch(line):
            raise OfferError(f"malformed SDP: line {number} is not 'm=<media> <port> <proto> <formats>': {line[:60]!r}")
        if line.startswith("m=audio ") or line.startswith("m=video "):
            formats = line.split()[3:]
            if not all(f.isdigit() and int(f) < 128 and int(f) not in _RTCP_PAYLOAD_TYPES for f in formats):
                raise OfferError(
                    f"malformed SDP: line {number} lists payload types outside 0..127 or in 72..76: {line[:60]!r}"
                )
        if line.startswith("c=") and not _CONNECTION_LINE.fullmatch(line):
            raise OfferError(f"malformed SDP: line {number} is not 'c=IN IP4|IP6 <address>': {line[:60]!r}")
        if line.startswith("a=candidate:") and len(line.split()) < 8:
            raise OfferError(f"malformed SDP: line {number} is a candidate with fewer than 8 fields: {line[:60]!r}")
