"""Ask the receiving browser to show each video frame as soon as it is decoded.

A WebRTC receiver holds every video frame in its jitter buffer before showing
it: Chromium waits for a target delay estimated from the frames' timing plus a
fixed render delay, on loopback too. The RTP header extension "playout-delay"
(``http://www.webrtc.org/experiments/rtp-hdrext/playout-delay``: 3 bytes, a
12-bit minimum and a 12-bit maximum delay in 10 ms units) lets the sender
bound that delay; minimum = maximum = 0 asks for none, so frames are rendered
as they complete, as cloud-gaming senders do. For a face that follows a voice
the delay costs more than the smoothing buys: the server already paces the
frames and stamps them from the wall clock (``engine/output/tracks.py``), so
on a quiet network there is nothing for the buffer to smooth. On a jittery
one, frames then show when they arrive; ``avatar serve --playout-delay
browser`` leaves the delay to the browser instead (bench/README.md,
``browser``, has both).

aiortc neither negotiates nor writes the extension.
:func:`request_zero_playout_delay` adds it to a video transceiver's negotiated
header extensions when the offer lists it (Chromium's offers do), so that the
answer carries its ``a=extmap`` line under the offer's id, and gives the
sender a header-extension map that stamps it on every packet. Both live in
aiortc's private attributes: if a future aiortc moves them, the function
raises instead of silently sending frames that wait.
"""

from typing import Any

from aiortc import RTCRtpTransceiver
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensions, HeaderExtensionsMap, pack_header_extensions, unpack_header_extensions
from aiortc.sdp import SessionDescription

PLAYOUT_DELAY_URI = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"
ZERO_PLAYOUT_DELAY = bytes(3)
"""The extension's value for minimum 0 and maximum 0 (12 + 12 bits, big-endian, 10 ms units)."""

_SENDER_EXTENSIONS_MAP = "_RTCRtpSender__rtp_header_extensions_map"
"""aiortc's private attribute holding the map a sender writes its packets' header extensions with."""


class ZeroPlayoutDelayMap(HeaderExtensionsMap):
    """aiortc's header-extension map that also writes playout delay 0 / 0, once negotiated (its id known)."""

    def __init__(self) -> None:
        super().__init__()
        self.playout_delay_id = 0
        """The negotiated extension id (1-14); 0 until :meth:`configure` finds it."""

    def configure(self, parameters: RTCRtpParameters) -> None:
        super().configure(parameters)
        for extension in parameters.headerExtensions:
            if extension.uri == PLAYOUT_DELAY_URI:
                self.playout_delay_id = extension.id

    def set(self, values: HeaderExtensions) -> tuple[int, bytes]:
        profile, data = super().set(values)
        if not self.playout_delay_id:
            return profile, data
        extensions = unpack_header_extensions(profile, data) if data else []
        return pack_header_extensions([*extensions, (self.playout_delay_id, ZERO_PLAYOUT_DELAY)])


def offered_playout_delay_id(offer_sdp: str, mid: str | None) -> int | None:
    """The id the offer gives the playout-delay extension in the video section ``mid``; None if not offered."""
    for media in SessionDescription.parse(offer_sdp).media:
        if media.kind == "video" and media.rtp.muxId == mid:
            for extension in media.rtp.headerExtensions:
                if extension.uri == PLAYOUT_DELAY_URI:
                    return int(extension.id)
    return None


def request_zero_playout_delay(transceiver: RTCRtpTransceiver, offer_sdp: str) -> bool:
    """Negotiate playout delay 0 / 0 on a video transceiver and stamp it on its packets; True if the offer allows.

    Call it after ``setRemoteDescription(offer)`` and before ``createAnswer``.

    Raises:
        ValueError: ``transceiver`` is not a video transceiver.
        RuntimeError: this aiortc version keeps the negotiated extensions or the sender's map elsewhere.
    """
    if transceiver.kind != "video":
        raise ValueError(f"request_zero_playout_delay() applies to video transceivers only, got {transceiver.kind}")
    negotiated: Any = getattr(transceiver, "_headerExtensions", None)
    sender = transceiver.sender
    current_map = getattr(sender, _SENDER_EXTENSIONS_MAP, None)
    if not isinstance(negotiated, list) or not isinstance(current_map, HeaderExtensionsMap):
        raise RuntimeError(
            "aiortc no longer keeps the negotiated header extensions in RTCRtpTransceiver._headerExtensions or the "
            f"sender's map in {_SENDER_EXTENSIONS_MAP}; update engine/output/playout_delay.py for this aiortc version"
        )
    extension_id = offered_playout_delay_id(offer_sdp, transceiver.mid)
    if extension_id is None:
        return False
    if all(extension.uri != PLAYOUT_DELAY_URI for extension in negotiated):
        negotiated.append(RTCRtpHeaderExtensionParameters(id=extension_id, uri=PLAYOUT_DELAY_URI))
    setattr(sender, _SENDER_EXTENSIONS_MAP, ZeroPlayoutDelayMap())
    return True
