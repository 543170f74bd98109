"""An H.264 + AAC mp4 file written frame by frame with PyAV."""

from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np


class Mp4Writer:
    """Video at a fixed ``fps`` (frame n has pts n) plus one mono audio track.

    Use as a context manager; :meth:`close` flushes both encoders. ``width`` and
    ``height`` must be even (the encoder's 4:2:0 chroma needs pairs of pixels).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        width: int,
        height: int,
        fps: int = 25,
        audio_rate_hz: int = 16_000,
        crf: int = 20,
        preset: str = "veryfast",
    ) -> None:
        if width % 2 or height % 2:
            raise ValueError(f"mp4 frame size must be even, got {width}x{height}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.path), mode="w")
        self._video = self._container.add_stream("libx264", rate=fps)
        self._video.width = width
        self._video.height = height
        self._video.pix_fmt = "yuv420p"
        self._video.time_base = Fraction(1, fps)
        self._video.options = {"crf": str(crf), "preset": preset}
        self._audio = self._container.add_stream("aac", rate=audio_rate_hz)
        self._audio.layout = "mono"
        self._audio.time_base = Fraction(1, audio_rate_hz)
        self._audio_rate_hz = audio_rate_hz
        self._frames_written = 0
        self._audio_samples_written = 0

    @property
    def frames_written(self) -> int:
        return self._frames_written

    def write_frame(self, rgb: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB picture."""
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self._frames_written
        self._container.mux(self._video.encode(frame))
        self._frames_written += 1

    def write_audio(self, samples: np.ndarray) -> None:
        """Append mono float32 samples in [-1, 1] at ``audio_rate_hz``."""
        if samples.size == 0:
            return
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples, dtype=np.float32).reshape(1, -1), format="fltp", layout="mono"
        )
        frame.sample_rate = self._audio_rate_hz
        frame.pts = self._audio_samples_written
        self._container.mux(self._audio.encode(frame))
        self._audio_samples_written += samples.size

    def close(self) -> None:
        """Flush the encoders and finish the file (safe to call twice)."""
        if self._container is None:
            return
        self._container.mux(self._video.encode(None))
        self._container.mux(self._audio.encode(None))
        self._container.close()
        self._container = None  # type: ignore[assignment]  # closed: the next close() returns at once

    def __enter__(self) -> "Mp4Writer":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
