"""A live session's avatar published to a WHIP endpoint: video (VP8 or H.264) and the delayed voice (Opus).

The media side is the server's own WebRTC tracks (``engine.output.tracks``):
the avatar's video paced and stamped from the wall clock, and, optionally,
the speaker's voice held until the video showing it has gone out, so that an
SFU's subscribers see lips and hear voice together. Only the direction
differs from ``avatar serve``: here the engine makes the offer and sends it
to the endpoint (``engine.output.whip``).

The publisher outlives its connections. When one fails (the endpoint went
away, ICE failed, consent expired), it is torn down (DELETE, close) and a new
one is offered, after a back-off (``BACKOFF_S``, starting over once a
connection is up); the live session never notices. A refusal that retrying
cannot fix (401, 403, 404...) stops publishing and is reported through
``on_error``. Frames rendered while no connection is up are dropped (newest
wins): nothing queues.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from engine.output.pictures import PictureFormatter
from engine.output.tracks import AvatarVideoTrack, DelayedVoiceTrack
from engine.output.video_encoder import speed_up_video_encoder
from engine.output.whip import WhipClient, WhipError
from engine.pipeline import VideoFrame

logger = logging.getLogger(__name__)

VIDEO_CODECS = {"vp8": "video/VP8", "h264": "video/H264"}
"""``--video-codec`` choices -> the MIME type offered (and nothing else)."""
BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
"""Waits before the 1st, 2nd, ... reconnection attempt in a row, seconds; the last repeats."""
CLOSE_TIMEOUT_S = 5.0
"""Longest wait for the DELETE and for aiortc to close a connection."""


@dataclass
class _Connection:
    """One peer connection to the endpoint, with its own tracks (tracks do not outlive a connection)."""

    pc: RTCPeerConnection
    video: AvatarVideoTrack
    voice: DelayedVoiceTrack | None
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class WhipPublisher:
    """A video output publishing to a WHIP endpoint; feed the voice with :meth:`push_voice`.

    Attach with ``reports_sends=True`` (the paced track reports what left).
    Call :meth:`connect` for a first attempt that raises, or :meth:`start`
    alone to connect in the background; :meth:`close` ends the session on
    the server (DELETE).
    """

    name = "whip"

    def __init__(
        self,
        client: WhipClient,
        still_rgb: np.ndarray,
        *,
        fps: int,
        size_px: int,
        video_codec: str = "vp8",
        voice: bool = True,
        on_sent: Callable[[VideoFrame], None] | None = None,
        on_repeat: Callable[[], None] | None = None,
        on_dropped: Callable[[], None] | None = None,
        on_error: Callable[[WhipError], None] | None = None,
        backoff_s: tuple[float, ...] = BACKOFF_S,
    ) -> None:
        """
        Args:
            client: the endpoint (URL and token).
            still_rgb: (H, W, 3) uint8, sent until the first rendered frame (the portrait).
            fps: the video's frame rate; size_px: its longer side, pixels (even).
            video_codec: ``vp8`` or ``h264``.
            voice: publish an Opus track carrying what :meth:`push_voice` is given.
            on_sent, on_repeat, on_dropped: as ``AvatarVideoTrack``'s (a rendered
                frame left, the last picture was repeated, a frame was replaced).
            on_error: publishing stopped for good (a refusal retrying cannot fix).
            backoff_s: waits between reconnection attempts (``BACKOFF_S``).
        """
        if video_codec not in VIDEO_CODECS:
            raise ValueError(f"video codec must be one of {', '.join(VIDEO_CODECS)}, got {video_codec!r}")
        self.client = client
        self.fps = fps
        self.video_codec = video_codec
        self.voice = voice
        self.connections_made = 0
        """Connections established so far (1 plus the reconnections)."""
        self.error: WhipError | None = None
        """Why publishing stopped for good, once it has."""
        self._formatter = PictureFormatter(
            portrait_height_px=still_rgb.shape[0], portrait_width_px=still_rgb.shape[1], output_size_px=size_px
        )
        self._picture = self._formatter(still_rgb)
        self._on_sent = on_sent
        self._on_repeat = on_repeat
        self._on_dropped = on_dropped
        self._on_error = on_error
        self._backoff_s = backoff_s
        self._connection: _Connection | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def width_px(self) -> int:
        return self._formatter.width_px

    @property
    def height_px(self) -> int:
        return self._formatter.height_px

    async def connect(self) -> None:
        """Offer a connection now; raises WhipError when the endpoint refuses or cannot be reached."""
        if self._connection is None:
            self._connection = await self._open()

    def start(self) -> None:
        """Keep a connection up from now on, in the background (connecting first if :meth:`connect` was not)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._supervise(), name="whip-publisher")

    async def wait_connected(self) -> None:
        """Return once a connection's ICE and DTLS are up."""
        await self._connected.wait()

    async def send_video(self, frame: VideoFrame) -> None:
        picture = await asyncio.to_thread(self._formatter, frame)
        self._picture = picture
        connection = self._connection
        if connection is None:
            if self._on_dropped is not None:
                self._on_dropped()
            return
        connection.video.publish(frame, picture)

    def push_voice(self, frame: av.AudioFrame, start_sample: int) -> None:
        """The speaker's audio ``frame`` (s16, mono or stereo), starting at ``start_sample`` of the audio clock."""
        connection = self._connection
        if connection is not None and connection.voice is not None:
            connection.voice.push(frame, start_sample)

    async def close(self) -> None:
        """Stop publishing: DELETE the session on the server and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._teardown()

    # -- connections -----------------------------------------------------------------------------

    async def _supervise(self) -> None:
        failures = 0
        while True:
            if self._connection is not None:
                await self._connection.ended.wait()
                logger.warning("WHIP connection to %s lost; reconnecting", self.client.url)
                await self._teardown()
            try:
                self._connection = await self._open()
                failures = 0
            except WhipError as exc:
                if not exc.retry:
                    logger.error("%s", exc)
                    self.error = exc
                    if self._on_error is not None:
                        self._on_error(exc)
                    return
                delay_s = self._backoff_s[min(failures, len(self._backoff_s) - 1)]
                failures += 1
                logger.warning("%s (in %g s)", exc, delay_s)
                await asyncio.sleep(delay_s)

    async def _open(self) -> _Connection:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        voice = DelayedVoiceTrack() if self.voice else None
        connection = _Connection(pc=pc, video=self._video_track(voice), voice=voice)
        try:
            video = pc.addTransceiver(connection.video, direction="sendonly")
            mime = VIDEO_CODECS[self.video_codec]
            video.setCodecPreferences(
                [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType.lower() == mime.lower()]
            )
            if voice is not None:
                pc.addTransceiver(voice, direction="sendonly")
            pc.on("connectionstatechange", lambda: self._state_changed(connection))
            await pc.setLocalDescription(await pc.createOffer())  # gathers every candidate: no trickle
            answer = await self.client.publish(pc.localDescription.sdp)
            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            except Exception as exc:  # aiortc raises assorted errors for an answer it cannot use
                with contextlib.suppress(WhipError):
                    await self.client.delete()
                raise WhipError(
                    f"the WHIP endpoint's answer cannot be used: {type(exc).__name__}: {exc}", status=201, retry=False
                ) from None
            # the server's encoder: its speed options, and each frame's pts as its RTP timestamp (aiortc's own
            # put about half of them one tick low, which a subscriber pairing frames by timestamp would see)
            speed_up_video_encoder(video)
        except BaseException:
            await _close_quietly(connection)
            raise
        return connection

    def _video_track(self, voice: DelayedVoiceTrack | None) -> AvatarVideoTrack:
        def sent(frame: VideoFrame) -> None:
            if voice is not None:
                voice.release_through(frame.trace.shown_sample)
            if self._on_sent is not None:
                self._on_sent(frame)

        return AvatarVideoTrack(
            self._picture, fps=self.fps, on_sent=sent, on_repeat=self._on_repeat, on_dropped=self._on_dropped
        )

    def _state_changed(self, connection: _Connection) -> None:
        state = connection.pc.connectionState
        if state == "connected":
            self.connections_made += 1
            self._connected.set()
        elif state in ("failed", "closed"):
            self._connected.clear()
            connection.ended.set()

    async def _teardown(self) -> None:
        connection, self._connection = self._connection, None
        self._connected.clear()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self.client.delete()
        except (WhipError, TimeoutError) as exc:
            logger.warning("ending the WHIP session: %s", exc)
        if connection is not None:
            await _close_quietly(connection)


async def _close_quietly(connection: _Connection) -> None:
    connection.video.stop()
    if connection.voice is not None:
        connection.voice.stop()
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await connection.pc.close()
    except Exception:
        logger.exception("closing a WHIP peer connection failed")
