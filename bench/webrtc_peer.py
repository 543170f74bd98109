"""The benchmark's WebRTC client: a paced microphone out, video (and voice) in, every timestamp kept.

It offers what a browser sharing its microphone offers (audio sendrecv, video
recvonly, a "control" data channel) through ``POST /offer``. What it keeps:

- when each 20 ms audio packet was handed to the sender (``time.perf_counter``);
- per received video frame: arrival time, RTP pts (aiortc maps the first to
  0, and the server's first frame has pts 0, so these are the server's pts)
  and the luma of the mouth region and of a background patch (block means);
- per received voice packet (``voice=True``): arrival time and pts;
- the frame traces the server sends in its ~1 s stats messages.

Its receivers release each frame as soon as it is complete, as a browser's do
(:class:`BrowserLikeJitterBuffer`), not as aiortc's own buffers do.

All wall times are ``time.perf_counter()``: on Linux the system-wide monotonic
clock, so they compare with the server's traces on the same machine.
"""

import asyncio
import contextlib
import fractions
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import av
import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket

from bench.speech import WEBRTC_RATE_HZ, as_webrtc_audio
from engine.avatar import Avatar
from engine.pipeline import SAMPLE_RATE_HZ

PACKET_SAMPLES = SAMPLE_RATE_HZ * 20 // 1000
"""320: one 20 ms packet of the client's 16 kHz audio."""

Region = tuple[slice, slice]


def _require_shared_clock() -> None:
    """Cross-process latency needs a system-wide clock behind ``perf_counter``."""
    implementation = time.get_clock_info("perf_counter").implementation
    if "CLOCK_MONOTONIC" not in implementation:
        raise RuntimeError(
            f"perf_counter is {implementation}, not the shared monotonic clock: cannot compare "
            "the client's and the server's times"
        )


class PacedMicrophone(MediaStreamTrack):
    """48 kHz mono s16 in 20 ms packets, each released when its last sample would have been captured.

    Packet ``k`` (16 kHz samples ``320 k`` to ``320 k + 319`` of the audio) leaves
    at ``start_s + (k + 1) * 20 ms``, as a live microphone's does; after the
    audio ends, silence. ``sent_s[k]`` is when packet ``k`` was handed to the
    sender. 48 kHz as browsers capture: aiortc's Opus encoder then only
    duplicates the channel, where resampling 16 kHz would hold each packet
    back until the next one arrives.
    """

    kind = "audio"

    def __init__(self, audio: np.ndarray) -> None:
        """``audio``: 16 kHz mono float32 in [-1, 1]."""
        super().__init__()
        self._audio = as_webrtc_audio(audio, layout="mono")[:, 0]
        self._packet = WEBRTC_RATE_HZ * PACKET_SAMPLES // SAMPLE_RATE_HZ
        self.start_s: float | None = None
        self.sent_s: list[float] = []

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        index = len(self.sent_s)
        now = time.perf_counter()
        if self.start_s is None:
            self.start_s = now - PACKET_SAMPLES / SAMPLE_RATE_HZ  # the first packet was "captured" just now
        due = self.start_s + (index + 1) * PACKET_SAMPLES / SAMPLE_RATE_HZ
        if due > now:
            await asyncio.sleep(due - now)
        chunk = self._audio[index * self._packet : (index + 1) * self._packet]
        if chunk.size < self._packet:
            chunk = np.concatenate([chunk, np.zeros(self._packet - chunk.size, np.int16)])
        frame = av.AudioFrame.from_ndarray(chunk[None, :], format="s16", layout="mono")
        frame.sample_rate = WEBRTC_RATE_HZ
        frame.pts = index * self._packet
        frame.time_base = fractions.Fraction(1, WEBRTC_RATE_HZ)
        self.sent_s.append(time.perf_counter())
        return frame


class BrowserLikeJitterBuffer(JitterBuffer):
    """Releases a frame as soon as it is complete, as a browser's receiver does.

    aiortc's own buffer knows a frame is complete only when the first packet
    of the next frame arrives: one frame interval (40 ms at 25 fps) that a
    browser does not add (it reads the RTP marker bit on a video frame's last
    packet), and for audio four packets of prefetch (80 ms) meant for
    playback. Measuring the engine through that would charge the client's
    buffering to the server. Here a video frame goes once its marker packet
    and all before it have arrived, an audio packet at once; packets are
    still put in order (a gap holds what follows it).
    """

    def __init__(self, *, video: bool) -> None:
        super().__init__(capacity=512 if video else 16, is_video=video)
        self._video = video

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        packets: list[RtpPacket] = []
        for count in range(self.capacity):
            packet = self._packets[(self._origin + count) % self.capacity]  # type: ignore[operator]
            if packet is None:
                return None
            if packets and packet.timestamp != packets[0].timestamp:  # the previous frame had no marker
                self.remove(count)
                return _joined(packets)
            packets.append(packet)
            if packet.marker or not self._video:
                self.remove(count + 1)
                return _joined(packets)
        return None


def _joined(packets: list[RtpPacket]) -> JitterFrame:
    data = b"".join(p._data for p in packets)  # type: ignore[attr-defined]  # the depayloaded payload
    return JitterFrame(data=data, timestamp=packets[0].timestamp)


def use_browser_like_buffers(pc: RTCPeerConnection) -> None:
    """Give every receiver of ``pc`` a :class:`BrowserLikeJitterBuffer` (before media flows)."""
    for transceiver in pc.getTransceivers():
        receiver = transceiver.receiver
        if not isinstance(getattr(receiver, _RECEIVER_BUFFER, None), JitterBuffer):
            raise RuntimeError(
                f"aiortc's RTCRtpReceiver has no {_RECEIVER_BUFFER} any more: update bench/webrtc_peer.py"
            )
        setattr(receiver, _RECEIVER_BUFFER, BrowserLikeJitterBuffer(video=transceiver.kind == "video"))


_RECEIVER_BUFFER = "_RTCRtpReceiver__jitter_buffer"
"""aiortc's private attribute (engine/server/jitter.py replaces the server's the same way)."""


@dataclass(repr=False)
class VideoLog:
    """Received video frames in arrival order: wall time, pts (90 kHz), and the luma (0..255) of the
    mouth and of a background patch, averaged over ``REGION_BIN_PX`` square blocks (small enough to keep)."""

    arrival_s: list[float] = field(default_factory=list)
    pts: list[int] = field(default_factory=list)
    mouth: list[np.ndarray] = field(default_factory=list)
    background: list[np.ndarray] = field(default_factory=list)

    def __repr__(self) -> str:
        # the default repr prints every array; asyncio formatted the finished task's
        # repr (its result, the Peer, included) while shutting its loop down, which
        # took about six minutes after a one-hour drift run
        return f"VideoLog({len(self.pts)} frames)"


REGION_BIN_PX = 4
"""Side of the blocks the watched regions are averaged over, pixels: ~16x less to keep, codec noise smoothed."""


@dataclass(repr=False)
class VoiceLog:
    """Received voice packets: wall time and pts (the server's audio clock at 48 kHz, first packet 0)."""

    arrival_s: list[float] = field(default_factory=list)
    pts: list[int] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"VoiceLog({len(self.pts)} packets)"


def watched_regions(avatar: Avatar, output_size_px: int) -> tuple[Region, Region]:
    """Rows and columns, in video pixels, of the mouth (lower middle of the crop) and of a background patch."""
    box = avatar.crop_box
    scale = output_size_px / max(avatar.portrait.shape[:2])
    mouth = (
        slice(int((box.y0 + 0.55 * box.size) * scale), int((box.y0 + 0.9 * box.size) * scale)),
        slice(int((box.x0 + 0.25 * box.size) * scale), int((box.x0 + 0.75 * box.size) * scale)),
    )
    background = (slice(0, max(2, int(box.y0 * scale) - 4)), slice(0, max(2, int(box.x0 * scale) - 4)))
    return mouth, background


@dataclass
class Peer:
    """A connected client and everything it has recorded so far."""

    pc: RTCPeerConnection
    microphone: PacedMicrophone
    video: VideoLog
    voice: VoiceLog
    traces: list[dict[str, Any]] = field(repr=False)
    tasks: list[asyncio.Task[None]]

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.pc.close()


async def connect(base_url: str, audio: np.ndarray, *, regions: tuple[Region, Region], voice: bool) -> Peer:
    """Offer to ``base_url``/offer, apply the answer and start streaming ``audio`` (16 kHz mono float32)."""
    _require_shared_clock()
    microphone = PacedMicrophone(audio)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(microphone)
    pc.addTransceiver("video", direction="recvonly")
    control = pc.createDataChannel("control")
    traces: list[dict[str, Any]] = []
    video, voice_log = VideoLog(), VoiceLog()
    tasks: list[asyncio.Task[None]] = []

    @control.on("message")
    def on_message(message: str) -> None:
        data = json.loads(message)
        if data.get("type") == "stats":
            traces.extend(data.get("frames", []))

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        if track.kind == "video":
            tasks.append(asyncio.create_task(_receive_video(track, video, regions)))
        else:
            tasks.append(asyncio.create_task(_receive_voice(track, voice_log)))

    await pc.setLocalDescription(await pc.createOffer())
    body = {"sdp": pc.localDescription.sdp, "type": "offer", "voice": voice}
    async with aiohttp.ClientSession() as http, http.post(f"{base_url}/offer", json=body) as response:
        if response.status != 200:
            raise RuntimeError(f"the server refused the offer: {response.status} {await response.text()}")
        answer = await response.json()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))
    use_browser_like_buffers(pc)  # DTLS is not up yet: no packet has arrived
    return Peer(pc, microphone, video, voice_log, traces, tasks)


async def _receive_video(track: MediaStreamTrack, log: VideoLog, regions: tuple[Region, Region]) -> None:
    mouth, background = regions
    with contextlib.suppress(MediaStreamError):
        while True:
            frame = await track.recv()
            arrival_s = time.perf_counter()
            assert isinstance(frame, av.VideoFrame) and frame.pts is not None
            log.arrival_s.append(arrival_s)
            log.pts.append(int(frame.pts))
            if frame.format.name != "yuv420p":
                frame = frame.reformat(format="yuv420p")
            luma = frame.to_ndarray()[: frame.height]
            log.mouth.append(_binned(luma[mouth]))
            log.background.append(_binned(luma[background]))


def _binned(region: np.ndarray) -> np.ndarray:
    """Mean of each ``REGION_BIN_PX`` square block of a 2-D uint8 region, float32."""
    rows, cols = region.shape[0] // REGION_BIN_PX, region.shape[1] // REGION_BIN_PX
    blocks = region[: rows * REGION_BIN_PX, : cols * REGION_BIN_PX].reshape(rows, REGION_BIN_PX, cols, REGION_BIN_PX)
    return blocks.mean(axis=(1, 3), dtype=np.float32)


async def _receive_voice(track: MediaStreamTrack, log: VoiceLog) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            frame = await track.recv()
            log.arrival_s.append(time.perf_counter())
            assert frame.pts is not None
            log.pts.append(int(frame.pts))


async def record(
    base_url: str,
    audio: np.ndarray,
    *,
    regions: tuple[Region, Region],
    voice: bool = False,
    tail_s: float = 1.5,
    tick_s: float = 1.0,
    on_tick: Callable[[], None] | None = None,
) -> Peer:
    """Stream all of ``audio`` (16 kHz mono float32) at real-time pace, wait ``tail_s``, hang up.

    ``on_tick()`` is called about every ``tick_s`` seconds while streaming (e.g.
    to sample the server's memory). The tail lets the last frames and the last
    stats message (traces come about once a second) arrive.
    """
    packets = -(-audio.size // PACKET_SAMPLES)
    peer = await connect(base_url, audio, regions=regions, voice=voice)
    try:
        connect_timeout_s = 30.0
        deadline = time.perf_counter() + connect_timeout_s
        while len(peer.microphone.sent_s) < packets:
            if not peer.microphone.sent_s and time.perf_counter() > deadline:
                raise RuntimeError(f"no audio was sent within {connect_timeout_s:g} s: the connection did not come up")
            if on_tick is not None:
                on_tick()
            await asyncio.sleep(tick_s)
        await asyncio.sleep(tail_s)
    finally:
        await peer.close()
    return peer
