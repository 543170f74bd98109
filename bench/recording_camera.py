"""A pyvirtualcam backend that records what it is sent: the stand-in for v4l2loopback of the virtual camera
tests and of ``python -m bench vcam``.

The kernel module cannot load on the CI machines, so the tests and the bench
plug this in with ``pyvirtualcam.register_backend`` and use the rest of
pyvirtualcam as it is (its shape checks and format negotiation included).
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pyvirtualcam
from pyvirtualcam.util import decode_fourcc, encode_fourcc

BACKEND = "recording"


@dataclass
class Recording:
    """Every camera opened through the backend, and every frame sent to the last one."""

    native_format: str = "I420"
    keep_frames: bool = True
    """Keep a copy of every frame (False: only when each came, for runs too long to hold them)."""
    opened_formats: list[str] = field(default_factory=list)
    times_s: list[float] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)
    size: tuple[int, int] = (0, 0)
    closed: int = 0


class RecordingCamera:
    """Conforms to ``pyvirtualcam.Backend``; writes into the module's current :class:`Recording`."""

    recording = Recording()

    def __init__(self, *, width: int, height: int, fps: float, fourcc: int, device: str | None, **kw: object) -> None:
        self._device = device or "recording-camera"
        self.recording.opened_formats.append(decode_fourcc(fourcc))
        self.recording.size = (width, height)

    def send(self, frame: np.ndarray) -> None:
        self.recording.times_s.append(time.perf_counter())
        if self.recording.keep_frames:
            self.recording.frames.append(frame.copy())

    def close(self) -> None:
        self.recording.closed += 1

    def device(self) -> str:
        return self._device

    def native_fourcc(self) -> int:
        return encode_fourcc(pyvirtualcam.PixelFormat[self.recording.native_format].value)


@contextmanager
def recording_camera(native_format: str = "I420", *, keep_frames: bool = True) -> Iterator[Recording]:
    """Register the backend for the block; yields what it records."""
    RecordingCamera.recording = Recording(native_format=native_format, keep_frames=keep_frames)
    pyvirtualcam.register_backend(BACKEND, RecordingCamera)
    try:
        yield RecordingCamera.recording
    finally:
        pyvirtualcam.camera.BACKENDS.pop(BACKEND, None)
