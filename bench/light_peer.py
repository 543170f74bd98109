"""A light WebRTC client for counting sessions: pre-encoded Opus out at real time, video counted, never decoded.

A full client (``bench/webrtc_peer.py``) encodes Opus and decodes VP8 for
every frame: on the 2 cores the server runs on, N of them would take the CPU
whose limit they are meant to find. This one does the least a real peer
must: ICE, DTLS and SRTP (the server cannot tell it from a browser), the
speech encoded once before any session starts and replayed as Opus packets
(aiortc's sender packs an ``av.Packet`` as it is: no encoding per session),
and the video's RTP packets decrypted and counted (a frame per packet with
the marker bit) but never decoded. It reads the server's stats messages on
the "control" data channel, whose frame traces say when each frame's audio
arrived and when its render ended.
"""

import asyncio
import contextlib
import fractions
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import av
import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.codecs.opus import OpusEncoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket

from bench.speech import WEBRTC_RATE_HZ, as_webrtc_audio

PACKET_S = 0.020
OPUS_TIME_BASE = fractions.Fraction(1, WEBRTC_RATE_HZ)
_RECEIVER_BUFFER = "_RTCRtpReceiver__jitter_buffer"
"""aiortc's private attribute holding a receiver's jitter buffer (engine/server/jitter.py explains)."""


def opus_packets(audio: np.ndarray) -> list[bytes]:
    """``audio`` (16 kHz mono float32) as 20 ms Opus packets, encoded once by aiortc's own encoder."""
    samples = as_webrtc_audio(audio, layout="stereo")
    step = int(WEBRTC_RATE_HZ * PACKET_S)
    encoder = OpusEncoder()
    packets: list[bytes] = []
    for start in range(0, samples.shape[0] - step + 1, step):
        frame = av.AudioFrame.from_ndarray(samples[start : start + step].reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = WEBRTC_RATE_HZ, start, OPUS_TIME_BASE
        packets += encoder.encode(frame)[0]
    return packets


class ReplayedOpus(MediaStreamTrack):
    """Pre-encoded Opus packets, looped, each released when its 20 ms would have been captured."""

    kind = "audio"

    def __init__(self, packets: list[bytes]) -> None:
        super().__init__()
        self._packets = packets
        self._start_s: float | None = None
        self.sent = 0

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start_s is None:
            self._start_s = time.perf_counter()
        due_s = self._start_s + (self.sent + 1) * PACKET_S
        delay_s = due_s - time.perf_counter()
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        packet = av.Packet(self._packets[self.sent % len(self._packets)])
        packet.pts, packet.time_base = self.sent * int(WEBRTC_RATE_HZ * PACKET_S), OPUS_TIME_BASE
        self.sent += 1
        return packet


@dataclass
class VideoCounter:
    """Stands in for the video receiver's jitter buffer: notes when each frame's last packet arrived."""

    arrival_s: list[float] = field(default_factory=list)
    packets: int = 0

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        """aiortc's call per RTP packet (decrypted): count it; never a frame to decode, never a picture loss."""
        self.packets += 1
        if packet.marker:
            self.arrival_s.append(time.perf_counter())
        return False, None

    def frames_between(self, start_s: float, end_s: float) -> int:
        return sum(start_s <= t < end_s for t in self.arrival_s)


@dataclass
class LightPeer:
    """A connected light client: its peer connection, what it counted and the server's frame traces."""

    pc: RTCPeerConnection
    audio: ReplayedOpus
    video: VideoCounter
    traces: list[dict[str, Any]]
    tasks: list[asyncio.Task[None]]

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.pc.close()


async def connect_light(base_url: str, packets: list[bytes]) -> LightPeer:
    """Offer (audio sendrecv, video recvonly, "control" channel) to ``base_url``/offer and start replaying."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    audio = ReplayedOpus(packets)
    pc.addTrack(audio)
    pc.addTransceiver("video", direction="recvonly")
    control = pc.createDataChannel("control")
    traces: list[dict[str, Any]] = []
    tasks: list[asyncio.Task[None]] = []
    video = VideoCounter()

    @control.on("message")
    def on_message(message: str) -> None:
        data = json.loads(message)
        if data.get("type") == "stats":
            traces.extend(data.get("frames", []))

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:  # nothing reaches the video track; drain any other
        if track.kind != "video":
            tasks.append(asyncio.create_task(_drain(track)))

    await pc.setLocalDescription(await pc.createOffer())
    body = {"sdp": pc.localDescription.sdp, "type": "offer"}
    async with aiohttp.ClientSession() as http, http.post(f"{base_url}/offer", json=body) as response:
        if response.status != 200:
            await pc.close()
            raise RuntimeError(f"the server refused the offer: {response.status} {await response.text()}")
        answer = await response.json()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))
    for transceiver in pc.getTransceivers():  # DTLS is not up yet: no packet has arrived
        if transceiver.kind == "video":
            if not hasattr(transceiver.receiver, _RECEIVER_BUFFER):
                raise RuntimeError(f"aiortc has no {_RECEIVER_BUFFER} any more: update bench/light_peer.py")
            setattr(transceiver.receiver, _RECEIVER_BUFFER, video)
    return LightPeer(pc, audio, video, traces, tasks)


async def _drain(track: MediaStreamTrack) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            await track.recv()
