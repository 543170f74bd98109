"""The avatar as a virtual camera that Zoom, Meet, Teams or a browser can pick, through ``pyvirtualcam``.

pyvirtualcam drives v4l2loopback on Linux, OBS Virtual Camera on Windows and
macOS (13+ needs OBS 30+), and Unity Capture on Windows (the optional ``vcam``
extra). Each backend has a native pixel format; frames sent in another one are
converted inside the backend, on the caller's thread. So the camera is opened
once to learn its native format and, when that differs from RGB, reopened in
it: conversion then happens here, in FFmpeg's swscale, off the event loop,
together with the scaling to the output size.

Pacing is the WebRTC track's (``engine.output.tracks.AvatarVideoTrack``): a
rendered frame goes out as soon as it is converted (no sooner than half a
frame interval after the previous one; a newer frame replaces a waiting one),
and the last picture is repeated when nothing new comes, so the camera gets a
steady ``fps`` before, during and after speech, and never a backlog. A
camera's consumer reads whatever was written last: a late frame is shown late,
a burst is thinned.
"""

import asyncio
import contextlib
import logging
import platform
import time
from collections.abc import Callable
from typing import Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError

from engine.errors import EngineError
from engine.output.tracks import AvatarVideoTrack
from engine.pipeline import VideoFrame

logger = logging.getLogger(__name__)

FFMPEG_FORMATS = {
    "RGB": "rgb24",
    "BGR": "bgr24",
    "RGBA": "rgba",
    "GRAY": "gray",
    "I420": "yuv420p",
    "NV12": "nv12",
    "YUYV": "yuyv422",
    "UYVY": "uyvy422",
}
"""pyvirtualcam ``PixelFormat`` name -> FFmpeg pixel format."""

SETUP_HINTS = {
    "Linux": "load v4l2loopback: sudo modprobe v4l2loopback devices=1 video_nr=10 card_label=Avatar "
    "exclusive_caps=1 (exclusive_caps=1 is what Chrome needs); then --camera /dev/video10",
    "Darwin": "install OBS 30 or later and start its virtual camera once (Start Virtual Camera) so macOS registers it",
    "Windows": "install OBS Studio (its virtual camera) or Unity Capture",
}


class VirtualCameraUnavailable(EngineError, RuntimeError):
    """No virtual camera could be opened; the message says which backends failed and how to set one up."""


def import_pyvirtualcam() -> Any:
    """The pyvirtualcam module, or an ImportError naming the extra to install."""
    try:
        import pyvirtualcam
    except ImportError:
        raise ImportError("the virtual camera needs the vcam extra: pip install 'avatar-engine[vcam]'") from None
    return pyvirtualcam


def open_camera(
    *, width_px: int, height_px: int, fps: int, device: str | None = None, backend: str | None = None
) -> Any:
    """A ``pyvirtualcam.Camera`` of that size, in the backend's native pixel format where we can produce it.

    Args:
        device: the camera to use (``/dev/video10``, ``OBS Virtual Camera``, ...); None: the first free one.
        backend: a pyvirtualcam backend name (``v4l2loopback``, ``obs``, ``unitycapture``, or one
            registered with ``pyvirtualcam.register_backend``); None: every backend, in turn.

    Raises:
        ImportError: pyvirtualcam is not installed.
        VirtualCameraUnavailable: no backend could open a camera.
    """
    pyvirtualcam = import_pyvirtualcam()
    if backend is not None and backend not in pyvirtualcam.camera.BACKENDS:
        known = ", ".join(sorted(pyvirtualcam.camera.BACKENDS)) or "none on this system"
        raise VirtualCameraUnavailable(f"no virtual camera backend {backend!r}; known: {known}")

    def opened(fmt: Any) -> Any:
        try:
            return pyvirtualcam.Camera(width_px, height_px, fps, fmt=fmt, device=device, backend=backend)
        except RuntimeError as exc:  # pyvirtualcam joins every backend's error, one a line
            reasons = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or "no backend"
            hint = SETUP_HINTS.get(platform.system(), "")
            raise VirtualCameraUnavailable(
                f"no virtual camera could be opened ({reasons})" + (f"; to set one up: {hint}" if hint else "")
            ) from None

    camera = opened(pyvirtualcam.PixelFormat.RGB)
    native = camera.native_fmt
    if native is not None and native != pyvirtualcam.PixelFormat.RGB and native.name in FFMPEG_FORMATS:
        camera.close()
        camera = opened(native)
    return camera


class CameraPictures:
    """(H, W, 3) uint8 RGB -> pictures in the camera's pixel format and size, and the bytes the camera takes."""

    def __init__(self, *, width_px: int, height_px: int, pixel_format: str) -> None:
        """``pixel_format``: the camera's pyvirtualcam ``PixelFormat`` name (``I420``, ``NV12``, ``RGB``, ...)."""
        if pixel_format not in FFMPEG_FORMATS:
            raise ValueError(f"unsupported camera pixel format {pixel_format}; known: {', '.join(FFMPEG_FORMATS)}")
        self.width_px = width_px
        self.height_px = height_px
        self.ffmpeg_format = FFMPEG_FORMATS[pixel_format]

    def picture(self, rgb: np.ndarray) -> av.VideoFrame:
        """One picture, scaled and converted (swscale; run off the event loop)."""
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        return frame.reformat(width=self.width_px, height=self.height_px, format=self.ffmpeg_format)

    def camera_bytes(self, picture: av.VideoFrame) -> np.ndarray:
        """The picture as the 1-D uint8 array pyvirtualcam's ``send`` takes (planes one after another)."""
        if self.ffmpeg_format == "uyvy422":  # packed, and not one of PyAV's to_ndarray formats
            plane = picture.planes[0]
            rows = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(self.height_px, plane.line_size)
            return np.ascontiguousarray(rows[:, : self.width_px * 2]).reshape(-1)
        return np.ascontiguousarray(picture.to_ndarray()).reshape(-1)


class VirtualCameraOutput:
    """A live session's video output into an open virtual camera, paced (see the module docstring).

    Attach with ``reports_sends=True``: the pacing loop, not :meth:`send_video`,
    knows when a frame leaves, and reports it through the callbacks.
    """

    name = "vcam"

    def __init__(
        self,
        camera: Any,
        still_rgb: np.ndarray,
        *,
        fps: int,
        on_sent: Callable[[VideoFrame], None] | None = None,
        on_repeat: Callable[[], None] | None = None,
        on_dropped: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """
        Args:
            camera: an open ``pyvirtualcam.Camera`` (:func:`open_camera`); closed with this output.
            still_rgb: (H, W, 3) uint8, shown until the first rendered frame (the portrait).
            fps: frames per second the camera gets, repeats included.
            on_sent: a rendered frame was written to the camera (its ``trace.send_s`` set then).
            on_repeat: the last picture was written again.
            on_dropped: a rendered frame was replaced by a newer one before its turn.
            clock: seconds, the clock of ``FrameTrace``.
        """
        self.camera = camera
        self._pictures = CameraPictures(width_px=camera.width, height_px=camera.height, pixel_format=camera.fmt.name)
        self._on_sent = on_sent
        self._on_repeat = on_repeat
        self._clock = clock
        self._just_sent: VideoFrame | None = None
        self._track = AvatarVideoTrack(
            self._pictures.picture(still_rgb), fps=fps, on_sent=self._took, on_dropped=on_dropped, clock=clock
        )
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start writing to the camera (the still picture until speech renders frames)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._write(), name="virtual-camera")

    async def send_video(self, frame: VideoFrame) -> None:
        picture = await asyncio.to_thread(self._pictures.picture, frame.rgb)
        self._track.publish(frame, picture)

    async def close(self) -> None:
        self._track.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.to_thread(self.camera.close)

    def _took(self, frame: VideoFrame) -> None:
        self._just_sent = frame

    async def _write(self) -> None:
        try:
            while True:
                picture = await self._track.recv()
                data = self._pictures.camera_bytes(picture)
                await asyncio.to_thread(self.camera.send, data)
                frame, self._just_sent = self._just_sent, None
                if frame is None:
                    if self._on_repeat is not None:
                        self._on_repeat()
                    continue
                frame.trace.send_s = self._clock()
                if self._on_sent is not None:
                    self._on_sent(frame)
        except MediaStreamError:
            return
