"""A real aiortc client for the server tests: paced speech out, video in, timestamps kept.

It behaves like a browser sharing only its microphone: one audio track sent
(sendrecv, as ``addTrack`` makes it), one video transceiver ``recvonly``, a
"control" data channel, no STUN server (host candidates on loopback).
"""

import asyncio
import contextlib
import fractions
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import av
import numpy as np
from aiohttp import web
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from engine.audio import SAMPLE_SPEECH, load_audio_file
from engine.server.app import create_app
from engine.server.config import ServerConfig

PACKET_MS = 20


class PacedSpeechTrack(MediaStreamTrack):
    """16 kHz mono s16 audio in 20 ms frames at real-time pace: ``speech`` then silence forever.

    ``sent_s`` maps each frame's pts (16 kHz samples) to the wall time
    (``time.perf_counter``) it was handed to the sender.
    """

    kind = "audio"

    def __init__(self, speech: np.ndarray, *, rate_hz: int = 16_000) -> None:
        super().__init__()
        self.rate_hz = rate_hz
        self.samples_per_frame = rate_hz * PACKET_MS // 1000
        self.speech = (np.clip(speech, -1, 1) * 32767).astype(np.int16)
        self.sent_s: dict[int, float] = {}
        self.speech_end_s: float | None = None
        self._start_s: float | None = None
        self._pts = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.perf_counter()
        if self._start_s is None:
            self._start_s = now
        due = self._start_s + self._pts / self.rate_hz
        if due > now:
            await asyncio.sleep(due - now)
        chunk = self.speech[self._pts : self._pts + self.samples_per_frame]
        if chunk.size < self.samples_per_frame:
            if self.speech_end_s is None:
                self.speech_end_s = time.perf_counter()
            chunk = np.concatenate([chunk, np.zeros(self.samples_per_frame - chunk.size, np.int16)])
        frame = av.AudioFrame.from_ndarray(chunk[None, :], format="s16", layout="mono")
        frame.sample_rate = self.rate_hz
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, self.rate_hz)
        self.sent_s[self._pts] = time.perf_counter()
        self._pts += self.samples_per_frame
        return frame


def sample_speech(seconds: float) -> np.ndarray:
    """The first ``seconds`` of the built-in sample (16 kHz mono float32): continuous speech."""
    return load_audio_file(SAMPLE_SPEECH)[: int(seconds * 16_000)]


@dataclass
class ReceivedVideo:
    """Decoded frames as they arrived: wall time, pts (90 kHz, from 0) and the RGB picture."""

    times_s: list[float] = field(default_factory=list)
    pts: list[int] = field(default_factory=list)
    pictures: list[np.ndarray] = field(default_factory=list)
    keep_pictures: bool = True

    def rate_fps(self, since_s: float, until_s: float) -> float:
        """Frames per second received between two wall times."""
        times = [t for t in self.times_s if since_s <= t <= until_s]
        if len(times) < 2:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])


@dataclass
class ClientPeer:
    """A connected client: its peer connection, what it sends and what it got back."""

    pc: RTCPeerConnection
    speech: PacedSpeechTrack
    video: ReceivedVideo
    control: Any
    messages: list[dict[str, Any]]
    location: str
    tasks: list[asyncio.Task[Any]]
    voice_times: list[float]
    """Wall times the server's voice packets were decoded (only with ``voice=True``)."""

    def messages_of(self, *types: str) -> list[dict[str, Any]]:
        """The control-channel messages received so far whose type is one of ``types``."""
        return [m for m in self.messages if m.get("type") in types]

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.pc.close()


async def _receive_video(track: MediaStreamTrack, video: ReceivedVideo) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            frame = await track.recv()
            video.times_s.append(time.perf_counter())
            video.pts.append(int(frame.pts))
            if video.keep_pictures:
                video.pictures.append(frame.to_ndarray(format="rgb24"))


async def _drain(track: MediaStreamTrack, sink: list[float] | None = None) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            await track.recv()
            if sink is not None:
                sink.append(time.perf_counter())


async def make_offer(speech: PacedSpeechTrack) -> tuple[RTCPeerConnection, Any]:
    """A client peer connection with its offer set as local description (all candidates gathered)."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(speech)
    pc.addTransceiver("video", direction="recvonly")
    control = pc.createDataChannel("control")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, control


async def connect(
    base_url: str, speech: PacedSpeechTrack, *, keep_pictures: bool = True, voice: bool = False
) -> ClientPeer:
    """Offer through ``POST /offer``, apply the answer, start receiving."""
    pc, control = await make_offer(speech)
    video = ReceivedVideo(keep_pictures=keep_pictures)
    messages: list[dict[str, Any]] = []
    control.on("message", lambda message: messages.append(json.loads(message)))
    tasks: list[asyncio.Task[Any]] = []
    voice_times: list[float] = []

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        if track.kind == "video":
            tasks.append(asyncio.create_task(_receive_video(track, video)))
        else:
            tasks.append(asyncio.create_task(_drain(track, voice_times)))

    body = {"sdp": pc.localDescription.sdp, "type": "offer", "voice": voice}
    async with aiohttp.ClientSession() as http, http.post(f"{base_url}/offer", json=body) as response:
        assert response.status == 200, await response.text()
        answer = await response.json()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))
    return ClientPeer(pc, speech, video, control, messages, answer["location"], tasks, voice_times)


@contextlib.asynccontextmanager
async def running_server(config: ServerConfig) -> AsyncIterator[tuple[str, web.Application]]:
    """The real app on 127.0.0.1 and an OS-chosen port; yields its base URL and the app."""
    app = create_app(config)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        await runner.cleanup()


async def wait_for(predicate: Any, timeout_s: float, what: str) -> None:
    """Poll ``predicate()`` every 20 ms until true; AssertionError naming ``what`` after ``timeout_s``."""
    deadline = time.perf_counter() + timeout_s
    while not predicate():
        if time.perf_counter() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(0.02)
