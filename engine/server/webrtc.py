"""One WebRTC client: its peer connection, the tasks that serve it, and its end.

A session answers the client's offer, then runs until hang-up:

- **ingest**: its own task drains the incoming audio track continuously (aiortc
  queues are unbounded: an unread track grows memory and latency), converts
  each decoded frame (format, layout and rate read from the frame) and feeds
  ``engine.pipeline.Session`` on the shared AU worker thread;
- **render**: each AU frame goes to the shared scheduler the moment its audio
  has arrived (deadline: arrival plus one frame interval); the scheduler keeps
  one pending request per session, so a session behind skips to its newest
  frame; the picture is converted to I420 off the loop and handed to the
  video track, which paces and stamps it (``engine/server/tracks.py``);
- **control**: the client's "control" data channel sets expression sliders and
  receives errors and ~1 s stats (``engine/server/control.py``);
- **watchdog**: ends the session when ICE does not connect within
  ``ice_timeout_s`` or no audio arrives for ``session_idle_timeout_s``.

It ends, once, on whichever comes first: hang-up (the peer's RTCP BYE or DTLS
close), ICE failure, a timeout, a server shutdown or ``DELETE /whip/<id>``;
ending cancels its tasks, forgets its scheduler slot, closes the peer
connection and releases its session slot. Nothing one session does raises into
another.
"""

import asyncio
import contextlib
import functools
import logging
import secrets
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from engine.au import ExpressionControl
from engine.audio import AudioFormatError
from engine.pipeline import SAMPLE_RATE_HZ, AUFrame, RenderRequest, Session, VideoFrame
from engine.server.au_worker import AUWorker
from engine.server.audio_frames import AudioFormat, audio_format, audio_frame_samples
from engine.server.context import EngineContext
from engine.server.control import (
    ControlError,
    applied_message,
    apply_expression,
    error_message,
    parse_control_message,
    stats_message,
)
from engine.server.jitter import reduce_audio_prefetch
from engine.server.offer import OfferError, check_offer
from engine.server.pictures import PictureFormatter
from engine.server.stats import FrameStats
from engine.server.tracks import AvatarVideoTrack, DelayedVoiceTrack

logger = logging.getLogger(__name__)

CONTROL_CHANNEL_LABEL = "control"
"""The data channel the client opens for expression messages and stats."""
STATS_INTERVAL_S = 1.0
"""Seconds between two stats messages on the control channel."""
CLOSE_TIMEOUT_S = 5.0
"""Longest wait for aiortc to tear a peer connection down."""
MAX_CONSECUTIVE_RENDER_FAILURES = 25
"""A session whose frames fail to render this many times in a row is ended."""


class WebRTCSession:
    """A client's peer connection and everything that serves it (see the module docstring).

    Create with :func:`open_session`; end with :meth:`close`.
    """

    def __init__(
        self,
        context: EngineContext,
        au_worker: AUWorker,
        session_id: str,
        *,
        voice: bool = False,
        on_closed: Callable[["WebRTCSession"], None] | None = None,
    ) -> None:
        """Hold slot ``session_id`` (already acquired); nothing runs until :meth:`accept`."""
        self.id = session_id
        self.resource_id = secrets.token_urlsafe(16)
        """The unguessable id in ``/whip/<resource_id>``."""
        self.voice = voice
        self.close_reason: str | None = None
        self._context = context
        self._config = context.config
        self._au_worker = au_worker
        self._on_closed = on_closed
        self._pc: RTCPeerConnection | None = None
        self._video: AvatarVideoTrack | None = None
        self._voice: DelayedVoiceTrack | None = DelayedVoiceTrack() if voice else None
        self._control: RTCDataChannel | None = None
        self._pipeline: Session | None = None
        self._audio_format: AudioFormat | None = None
        self._input_samples = 0
        self._expression = ExpressionControl()
        self._formatter = PictureFormatter(
            portrait_height_px=context.avatar.portrait.shape[0],
            portrait_width_px=context.avatar.portrait.shape[1],
            output_size_px=self._config.output_size_px,
        )
        self._stats = FrameStats(started_s=time.perf_counter())
        self._render_failures = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._renders: set[asyncio.Task[Any]] = set()
        self._answered_s = time.perf_counter()
        self._last_audio_s = self._answered_s
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
    def expression(self) -> ExpressionControl:
        """The expression sliders now applied to this session's AUs (replaced, never mutated, on change)."""
        return self._expression

    async def accept(self, offer_sdp: str) -> str:
        """Answer the client's offer and start serving it; returns the answer SDP.

        Raises:
            OfferError: the offer is malformed or lacks a sent audio or a received video section.
        """
        check_offer(offer_sdp)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # host candidates: no STUN server to wait for
        self._pc = pc
        pc.on("connectionstatechange", self._on_connection_state)
        pc.on("datachannel", self._on_datachannel)
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
        still = await asyncio.to_thread(self._formatter, self._context.avatar.portrait)
        self._video = AvatarVideoTrack(
            still, fps=self._config.fps, on_sent=self._on_video_sent, on_skipped=self._on_frame_unsent
        )
        video_out[0].sender.replaceTrack(self._video)
        video_out[0].direction = "sendonly"
        if self._voice is not None:
            audio_in[0].sender.replaceTrack(self._voice)
            audio_in[0].direction = "sendrecv"
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
        self._answered_s = self._last_audio_s = time.perf_counter()
        self._spawn(self._ingest(audio_in[0].receiver.track), "ingest")
        for transceiver in incoming:
            if transceiver is not audio_in[0]:  # a second microphone, a camera: read, never left unread
                self._spawn(_drain(transceiver.receiver.track), f"drain-{transceiver.kind}")
        self._spawn(self._watchdog(), "watchdog")
        self._spawn(self._report_stats(), "stats")
        return pc.localDescription.sdp

    def close(self, reason: str) -> asyncio.Task[None]:
        """End the session (once; later calls return the same task), for ``reason``.

        Safe to call from the session's own tasks: the ending runs in a task of
        its own, which callers may await.
        """
        if self._closing is None:
            self.close_reason = reason
            self._closing = asyncio.get_running_loop().create_task(self._shutdown(reason), name=f"close-{self.id}")
        return self._closing

    async def _shutdown(self, reason: str) -> None:
        logger.info("session %s ends: %s", self.id, reason)
        try:
            self._context.scheduler.forget(self.id)
            tasks = [*self._tasks, *self._renders]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for track in (self._video, self._voice):
                if track is not None:
                    track.stop()
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

    # -- tasks ---------------------------------------------------------------------------------

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coroutine, name=f"{self.id}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("session %s: task %s failed", self.id, task.get_name(), exc_info=task.exception())
            self.close(f"internal error in {task.get_name()}: {task.exception()}")

    async def _ingest(self, track: MediaStreamTrack) -> None:
        """Drain the client's audio: every decoded frame into the pipeline, as it arrives."""
        try:
            while True:
                frame = await track.recv()
                arrival_s = time.perf_counter()
                self._last_audio_s = arrival_s
                try:
                    samples = self._samples(frame)
                except AudioFormatError as exc:
                    self._warn_format(str(exc))
                    continue
                assert self._pipeline is not None and self._audio_format is not None
                start_sample = self._input_samples * SAMPLE_RATE_HZ // self._audio_format.rate_hz
                self._input_samples += samples.shape[0]
                if self._voice is not None:
                    self._voice.push(frame, start_sample)
                try:
                    push = functools.partial(self._pipeline.push_audio, samples, arrival_s=arrival_s)
                    au_frames = await self._au_worker.run(push)
                except AudioFormatError as exc:
                    self._warn_format(str(exc))
                    continue
                for au_frame in au_frames:
                    self._render_soon(au_frame)
        except MediaStreamError:
            self.close("the client stopped sending audio (hang-up)")

    def _samples(self, frame: av.AudioFrame) -> np.ndarray:
        """The frame's samples; the pipeline is built on the first frame, in that frame's format."""
        fmt = audio_format(frame)
        samples = audio_frame_samples(frame)
        if self._pipeline is None:
            self._pipeline = Session(
                self._context.au_backend,
                fps=self._config.fps,
                input_rate_hz=fmt.rate_hz,
                channels=fmt.channels,
                expression=self._expression,
            )
            self._audio_format = fmt
        elif fmt != self._audio_format:
            raise AudioFormatError(f"audio format changed mid-stream from {self._audio_format} to {fmt}")
        return samples

    def _render_soon(self, au_frame: AUFrame) -> None:
        task = asyncio.get_running_loop().create_task(self._render(au_frame))
        self._renders.add(task)
        task.add_done_callback(self._renders.discard)

    async def _render(self, au_frame: AUFrame) -> None:
        deadline_s = au_frame.trace.audio_arrival_s + 1.0 / self._config.fps
        request = RenderRequest(self._context.avatar, au_frame)
        try:
            frame = await self._context.scheduler.render(self.id, request, deadline_s=deadline_s)
        except Exception as exc:
            self._render_failures += 1
            logger.warning("session %s: frame %d failed to render: %s", self.id, au_frame.index, exc)
            if self._render_failures >= MAX_CONSECUTIVE_RENDER_FAILURES:
                self.close(f"{self._render_failures} frames in a row failed to render: {exc}")
            return
        self._render_failures = 0
        if frame is None:  # superseded by this session's newer frame, or too late to show
            self._on_frame_skipped()
            return
        picture = await asyncio.to_thread(self._formatter, frame.rgb)
        if self._video is not None:
            self._video.publish(frame, picture)

    async def _watchdog(self) -> None:
        config = self._config
        period_s = max(0.05, min(0.5, config.ice_timeout_s / 4, config.session_idle_timeout_s / 4))
        while True:
            await asyncio.sleep(period_s)
            now = time.perf_counter()
            if not self._connected and now - self._answered_s > config.ice_timeout_s:
                self.close(f"ICE did not connect within {config.ice_timeout_s:g} s")
                return
            if now - self._last_audio_s > config.session_idle_timeout_s:
                self.close(f"no audio for {config.session_idle_timeout_s:g} s (idle timeout)")
                return

    async def _report_stats(self) -> None:
        while True:
            await asyncio.sleep(STATS_INTERVAL_S)
            now = time.perf_counter()
            report = self._stats.report(
                now,
                session=self.id,
                audio_s=round(self._input_samples / self._audio_format.rate_hz, 3) if self._audio_format else 0.0,
                scheduler_mean_batch=round(self._context.scheduler.stats.mean_batch_size, 2),
            )
            self._stats = FrameStats(started_s=now)
            self._send_control(stats_message(report))

    # -- events --------------------------------------------------------------------------------

    def _on_frame_skipped(self) -> None:
        self._stats.frame_skipped()

    def _on_frame_unsent(self) -> None:
        self._stats.frame_skipped()
        self._context.metrics.frame_unsent("webrtc")

    def _on_video_sent(self, frame: VideoFrame | None) -> None:
        self._stats.frame_sent(frame)
        self._context.metrics.frame_sent("webrtc", None if frame is None else frame.trace)
        if frame is not None and self._voice is not None:
            self._voice.release_through(frame.trace.shown_sample)

    def _on_connection_state(self) -> None:
        assert self._pc is not None
        state = self._pc.connectionState
        if state == "connected":
            self._connected = True
        elif state in ("failed", "closed"):
            self.close(f"peer connection {state}")

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label != CONTROL_CHANNEL_LABEL:
            logger.info("session %s: ignoring data channel %r", self.id, channel.label)
            return
        self._control = channel
        channel.on("message", self._on_control_message)

    def _on_control_message(self, message: str | bytes) -> None:
        # Runs inside aiortc's SCTP receive path: nothing may escape from here.
        try:
            update = parse_control_message(message)
            self._expression = apply_expression(self._expression, update)
        except ControlError as exc:
            self._send_control(error_message(str(exc)))
            return
        except Exception:
            logger.exception("session %s: control message failed", self.id)
            self._send_control(error_message("internal error (logged on the server)"))
            return
        if self._pipeline is not None:
            self._pipeline.expression = self._expression  # one reference swap: the AU thread sees old or new
        self._send_control(applied_message("expression"))

    def _send_control(self, text: str) -> None:
        if self._control is not None and self._control.readyState == "open":
            try:
                self._control.send(text)
            except Exception as exc:  # closing under us: the session is ending anyway
                logger.info("session %s: control message not sent: %s", self.id, exc)

    def _warn_format(self, message: str) -> None:
        if not self._warned_format:
            logger.warning("session %s: dropping audio: %s", self.id, message)
            self._warned_format = True


async def _drain(track: MediaStreamTrack) -> None:
    """Read and discard a track nobody uses, so aiortc's unbounded queue behind it stays empty."""
    with contextlib.suppress(MediaStreamError):
        while True:
            await track.recv()


class SessionRegistry:
    """The live WebRTC sessions of a server, by WHIP resource id."""

    def __init__(self) -> None:
        self._sessions: dict[str, WebRTCSession] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[WebRTCSession]:
        """The sessions live now (a snapshot: ending sessions leave the registry)."""
        return iter(list(self._sessions.values()))

    def get(self, resource_id: str) -> WebRTCSession | None:
        return self._sessions.get(resource_id)

    def add(self, session: WebRTCSession) -> None:
        self._sessions[session.resource_id] = session

    def remove(self, session: WebRTCSession) -> None:
        self._sessions.pop(session.resource_id, None)

    async def close_all(self, reason: str) -> None:
        """End every session and wait until each has released its slot."""
        await asyncio.gather(*(session.close(reason) for session in self), return_exceptions=True)


async def open_session(
    context: EngineContext, au_worker: AUWorker, registry: SessionRegistry, offer_sdp: str, *, voice: bool = False
) -> tuple[WebRTCSession, str]:
    """Take a session slot, answer ``offer_sdp`` and start serving; returns the session and the answer SDP.

    Raises:
        SessionLimitError: every slot is taken (HTTP 503).
        OfferError: the offer cannot start a session (HTTP 400); the slot is released.
    """
    check_offer(offer_sdp)  # a malformed offer is refused as such, even when the server is full
    session_id = context.slots.acquire("webrtc")
    session = WebRTCSession(context, au_worker, session_id, voice=voice, on_closed=registry.remove)
    registry.add(session)
    try:
        answer = await session.accept(offer_sdp)
    except BaseException:
        await asyncio.shield(session.close("the offer was refused"))
        raise
    return session, answer
