"""Playout delay 0 / 0: negotiated when the offer lists it, and on the packets a real aiortc peer receives.

The effect a user sees (Chromium showing frames on arrival) is checked in
``tests/engine/server/test_browser.py``.
"""

import asyncio
import re

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensions, HeaderExtensionsMap, RtpPacket, unpack_header_extensions

from engine.output.playout_delay import (
    PLAYOUT_DELAY_URI,
    ZERO_PLAYOUT_DELAY,
    ZeroPlayoutDelayMap,
    offered_playout_delay_id,
    request_zero_playout_delay,
)

OFFERED_ID = 9
MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"


class _RecordingMap(HeaderExtensionsMap):
    """A receiving transport's map that also keeps every raw (id, value) pair it parses."""

    def __init__(self) -> None:
        super().__init__()
        self.raw: list[tuple[int, bytes]] = []

    def get(self, extension_profile: int, extension_value: bytes) -> HeaderExtensions:
        self.raw.extend(unpack_header_extensions(extension_profile, extension_value))
        return super().get(extension_profile, extension_value)


def _with_playout_delay(offer_sdp: str) -> str:
    """The offer with the extension listed in its video section, as Chromium's offers list it."""
    line = f"a=extmap:{OFFERED_ID} {PLAYOUT_DELAY_URI}\r\n"
    return re.sub(r"(m=video[^\r\n]*\r\n)", lambda match: match.group(1) + line, offer_sdp, count=1)


async def _offer(*, listed: bool) -> tuple[RTCPeerConnection, RTCPeerConnection, str]:
    """A receiving peer's offer (video in) read by a sending peer; both peers and the offer SDP."""
    receiver = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sender = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    receiver.addTransceiver("video", direction="recvonly")
    await receiver.setLocalDescription(await receiver.createOffer())
    offer_sdp = receiver.localDescription.sdp
    if listed:
        offer_sdp = _with_playout_delay(offer_sdp)
    await receiver.setLocalDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
    await sender.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
    return receiver, sender, offer_sdp


def test_the_map_adds_zero_delay_beside_the_other_extensions_once_negotiated() -> None:
    parameters = RTCRtpParameters(
        headerExtensions=[
            RTCRtpHeaderExtensionParameters(id=1, uri=MID_URI),
            RTCRtpHeaderExtensionParameters(id=OFFERED_ID, uri=PLAYOUT_DELAY_URI),
        ]
    )
    packet = RtpPacket(payload_type=96, sequence_number=1, timestamp=3000)
    packet.extensions.mid = "0"
    before = _RecordingMap()
    RtpPacket.parse(packet.serialize(ZeroPlayoutDelayMap()), before)
    assert before.raw == []  # nothing negotiated: nothing written
    mapping = ZeroPlayoutDelayMap()
    mapping.configure(parameters)
    after = _RecordingMap()
    RtpPacket.parse(packet.serialize(mapping), after)
    assert dict(after.raw) == {1: b"0", OFFERED_ID: ZERO_PLAYOUT_DELAY}


@pytest.mark.timeout(30)
async def test_a_real_peer_receives_zero_delay_on_every_video_packet() -> None:
    receiver, sender, offer_sdp = await _offer(listed=True)
    assert offered_playout_delay_id(offer_sdp, "0") == OFFERED_ID
    [transceiver] = sender.getTransceivers()
    transceiver.sender.replaceTrack(VideoStreamTrack())
    transceiver.direction = "sendonly"
    assert request_zero_playout_delay(transceiver, offer_sdp)
    await sender.setLocalDescription(await sender.createAnswer())
    answer_sdp = sender.localDescription.sdp
    recording = _RecordingMap()
    receiver.getTransceivers()[0].receiver.transport._rtp_header_extensions_map = recording
    await receiver.setRemoteDescription(sender.localDescription)
    track = receiver.getTransceivers()[0].receiver.track
    try:
        async with asyncio.timeout(20):
            for _ in range(5):
                await track.recv()
    finally:
        await sender.close()
        await receiver.close()
    assert f"a=extmap:{OFFERED_ID} {PLAYOUT_DELAY_URI}" in answer_sdp
    delays = [value for extension_id, value in recording.raw if extension_id == OFFERED_ID]
    assert delays and set(delays) == {ZERO_PLAYOUT_DELAY}


async def test_an_offer_without_the_extension_is_answered_without_it() -> None:
    receiver, sender, offer_sdp = await _offer(listed=False)
    [transceiver] = sender.getTransceivers()
    transceiver.sender.replaceTrack(VideoStreamTrack())
    assert not request_zero_playout_delay(transceiver, offer_sdp)
    await sender.setLocalDescription(await sender.createAnswer())
    assert PLAYOUT_DELAY_URI not in sender.localDescription.sdp
    await sender.close()
    await receiver.close()


async def test_audio_transceivers_are_refused() -> None:
    pc = RTCPeerConnection()
    with pytest.raises(ValueError, match="video transceivers only"):
        request_zero_playout_delay(pc.addTransceiver("audio"), "")
    await pc.close()
