"""WebRTC transport: one client's peer connection as an adapter on a :class:`~engine.live.LiveSession`.

This module only moves media and messages; the session logic (AU thread,
render deadline, newest-wins, failures, traces, stats) is the live session's.
A session answers the client's offer, then runs until hang-up:

- **ingest**: its own task drains the incoming audio track continuously (aiortc
  queues are unbounded: an unread track grows memory and latency) and pushes
  each decoded frame, in the frame's own format, into the live session;
- **video**: the live session's frames go out through :class:`TrackOutput`
  onto the paced, wall-clock-stamped track (``engine/output/tracks.py``);
  with ``voice``, the caller's audio comes back delayed to match the lips;
- **control**: the client's "control" data channel sets expression sliders and
  liveness, picks the avatar apps the face is forwarded to (among those the
  operator allowed: ``engine/output/forward.py``, one more AU output), and
  receives errors, stopped apps and ~1 s stats (``engine/server/control_channel.py``);
- **watchdog**: ends the session when ICE and DTLS do not connect within
  ``ice_timeout_s``, or when less than half real time of audio arrives for
  ``session_idle_timeout_s`` (``engine.server.limits.AudioActivity``).

It ends, once, on whichever comes first: hang-up (the peer's RTCP BYE or DTLS
close), ICE failure, a timeout, the live session failing, a server shutdown or
``DELETE /whip/<id>``; ending closes the live session, the peer connection and
releases the session slot. Nothing one session does raises into another.
"""

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Coroutine
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from engine.audio import AudioFormatError, frame_samples
from engine.live import LiveSession
from engine.output.pictures import PictureFormatter
from engine.output.playout_delay import request_zero_playout_delay
from engine.output.tracks import AvatarVideoTrack, DelayedVoiceTrack, TrackOutput
from engine.output.video_encoder import speed_up_video_encoder
from engine.pipeline import VideoFrame
from engine.server.audio_frames import audio_format
from engine.server.config import IceServer
from engine.server.context import EngineContext
from engine.server.control_channel import ControlChannel
from engine.server.jitter import reduce_audio_prefetch
from engine.server.limits import AudioActivity
from engine.server.offer import OfferError, check_offer

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 5.0
"""Longest wait for aiortc to tear a peer connection down."""


class WebRTCSession:
    """A client's peer connection and the live session it feeds (see the module docstring).

    Create and start with :func:`engine.server.webrtc_sessions.open_session`; end with :meth:`close`.
    """

    def __init__(
        self,
        context: EngineContext,
        session_id: str,
        *,
        voice: bool = False,
        on_connected: Callable[[], None] | None = None,
        on_closed: Callable[["WebRTCSession"], None] | None = None,
    ) -> None:
        """Hold slot ``session_id`` (already acquired); nothing runs until :meth:`accept`.

        ``on_connected`` is called once ICE and DTLS are up; ``on_closed`` once the session has ended.
        """
        self.id = session_id
        self.resource_id = secrets.token_urlsafe(16)
        """The unguessable id in ``/whip/<resource_id>``."""
        self.close_reason: str | None = None
        self._context = context
        self._config = context.config
        self._on_connected = on_connected
        self._on_closed = on_closed
        self._activity = AudioActivity(self._config.session_idle_timeout_s)
        self._live = LiveSession(
            context.parts, session_id, fps=self._config.fps, liveness=self._config.liveness, on_failure=self._failed
        )
        self._voice: DelayedVoiceTrack | None = DelayedVoiceTrack() if voice else None
        self._pc: RTCPeerConnection | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        forwards = context.forwarder.session(session_id, fps=self._config.fps)
        self._control = ControlChannel(self._live, forwards, self._spawn)
        forwards.on_stopped = self._control.forward_stopped
        self._live.add_au_output(forwards)
        self._answered_s = time.perf_counter()
        self._connected = False
        self._closing: asyncio.Task[None] | None = None
        self._warned_format = False

    @property
    def closed(self) -> bool:
        """Whether the session has begun to end."""
        return self._closing is not None

    @property
    def peer_connection(self) -> RTCPeerConnection | None:
        """The client's peer connection (None before :meth:`accept`)."""
        return self._pc

    @property
    def live(self) -> LiveSession:
        """The transport-agnostic session this connection feeds."""
        return self._live

    async def accept(self, offer_sdp: str) -> str:
        """Answer the client's offer and start serving it; returns the answer SDP.

        Raises:
            OfferError: the offer is malformed or lacks a sent audio or a received video section.
        """
        check_offer(offer_sdp)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=_ice_servers(self._config.ice_servers)))
        self._pc = pc
        pc.on("connectionstatechange", self._on_connection_state)
        pc.on("datachannel", self._control.on_datachannel)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        except Exception as exc:  # aiortc raises assorted errors for input it cannot use
            raise OfferError(f"the offer cannot be used: {type(exc).__name__}: {exc}") from exc
        incoming = [t for t in pc.getTransceivers() if t.receiver.track is not None]
        audio_in = [t for t in incoming if t.kind == "audio"]
        video_out = [t for t in pc.getTransceivers() if t.kind == "video"]
        if not audio_in or not video_out:  # check_offer() saw both; aiortc disagreeing is still the offer's fault
            raise OfferError("the offer needs an audio section it sends and a video section it receives")
        for transceiver in audio_in:
            reduce_audio_prefetch(transceiver)
        speed_up_video_encoder(video_out[0])
        if self._config.playout_delay == "zero":
            request_zero_playout_delay(video_out[0], offer_sdp)
        portrait = self._context.avatar.portrait
        formatter = PictureFormatter(
            portrait_height_px=portrait.shape[0],
            portrait_width_px=portrait.shape[1],
            output_size_px=self._config.output_size_px,
        )
        still = await asyncio.to_thread(formatter, portrait)
        track = AvatarVideoTrack(
            still,
            fps=self._config.fps,
            on_sent=self._on_video_sent,
            on_repeat=lambda: self._live.record_repeat(TrackOutput.name),
            on_dropped=lambda: self._live.record_unsent(TrackOutput.name),
        )
        self._live.add_video_output(TrackOutput(track, formatter), reports_sends=True)
        video_out[0].sender.replaceTrack(track)
        video_out[0].direction = "sendonly"
        if self._voice is not None:
            audio_in[0].sender.replaceTrack(self._voice)
            audio_in[0].direction = "sendrecv"
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
        self._answered_s = time.perf_counter()
        self._spawn(self._ingest(audio_in[0].receiver.track), "ingest")
        for transceiver in incoming:
            if transceiver is not audio_in[0]:  # a second microphone, a camera: read, never left unread
                self._spawn(_drain(transceiver.receiver.track), f"drain-{transceiver.kind}")
        self._spawn(self._watchdog(), "watchdog")
        self._spawn(self._control.report_stats(), "stats")
        return pc.localDescription.sdp

    def close(self, reason: str) -> asyncio.Task[None]:
        """End the session (once; later calls return the same task), for ``reason``.

        Safe to call from the session's own tasks and callbacks: the ending
        runs in a task of its own, which callers may await.
        """
        if self._closing is None:
            self.close_reason = reason
            self._closing = asyncio.get_running_loop().create_task(self._shutdown(reason), name=f"close-{self.id}")
        return self._closing

    def _failed(self, reason: str) -> None:
        """The live session cannot go on: end the session."""
        self.close(reason)

    async def _shutdown(self, reason: str) -> None:
        logger.info("session %s ends: %s", self.id, reason)
        try:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._live.close()
            if self._voice is not None:
                self._voice.stop()
            if self._pc is not None:
                try:
                    async with asyncio.timeout(CLOSE_TIMEOUT_S):
                        await self._pc.close()
                except Exception:
                    logger.exception("session %s: closing the peer connection failed", self.id)
        finally:
            self._context.slots.release(self.id)
            if self._on_closed is not None:
                self._on_closed(self)

    # -- tasks -----------------------------------------------------------------------------------

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coroutine, name=f"{self.id}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("session %s: task %s failed", self.id, task.get_name(), exc_info=task.exception())
            self.close(f"internal error in {task.get_name()}: {task.exception()}")

    async def _ingest(self, track: MediaStreamTrack) -> None:
        """Drain the client's audio: every decoded frame into the live session, as it arrives."""
        try:
            while True:
                frame = await track.recv()
                if not isinstance(frame, av.AudioFrame):  # an audio track yields audio frames; never trust it
                    continue
                arrival_s = time.perf_counter()
                assert isinstance(frame, av.AudioFrame), "an audio track yields audio frames"
                try:
                    fmt = audio_format(frame)
                    samples = frame_samples(frame)
                    start = await self._live.push_audio(
                        samples, rate_hz=fmt.rate_hz, channels=fmt.channels, arrival_s=arrival_s
                    )
                    self._activity.add(samples.shape[0] / fmt.rate_hz)
                except AudioFormatError as exc:
                    self._warn_format(str(exc))
                    continue
                if self._voice is not None:
                    self._voice.push(frame, start)
        except MediaStreamError:
            self.close("the client stopped sending audio (hang-up)")

    async def _watchdog(self) -> None:
        config = self._config
        period_s = max(0.05, min(0.5, config.ice_timeout_s / 4, config.session_idle_timeout_s / 4))
        while True:
            await asyncio.sleep(period_s)
            now = time.perf_counter()
            if not self._connected and now - self._answered_s > config.ice_timeout_s:
                self.close(f"ICE did not connect within {config.ice_timeout_s:g} s")
                return
            if self._activity.remaining_s() <= 0:
                self.close(f"no audio for {config.session_idle_timeout_s:g} s (idle timeout)")
                return

    # -- events ----------------------------------------------------------------------------------

    def _on_video_sent(self, frame: VideoFrame) -> None:
        self._live.record_sent(TrackOutput.name, frame)
        if self._voice is not None:
            self._voice.release_through(frame.trace.shown_sample)

    def _on_connection_state(self) -> None:
        assert self._pc is not None
        state = self._pc.connectionState
        if state == "connected":
            self._connected = True
            if self._on_connected is not None:
                self._on_connected()
        elif state in ("failed", "closed"):
            self.close(f"peer connection {state}")

    def _warn_format(self, message: str) -> None:
        if not self._warned_format:
            logger.warning("session %s: dropping audio: %s", self.id, message)
            self._warned_format = True


def _ice_servers(servers: tuple[IceServer, ...]) -> list[RTCIceServer]:
    """The configured STUN/TURN servers in aiortc's form (none: host candidates only, nothing to wait for)."""
    return [
        RTCIceServer(urls=list(server.urls), username=server.username, credential=server.credential)
        for server in servers
    ]


async def _drain(track: MediaStreamTrack) -> None:
    """Read and discard a track nobody uses, so aiortc's unbounded queue behind it stays empty."""
    with contextlib.suppress(MediaStreamError):
        while True:
            await track.recv()
