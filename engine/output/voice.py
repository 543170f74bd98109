"""The speaker's own voice, delayed to match the lips, as PyAV frames and on a local output device.

A virtual camera carries no sound: to appear in a call with voice and face in
sync, the voice goes to a virtual microphone (a PulseAudio null sink and its
monitor, VB-Cable, BlackHole) *delayed by the pipeline's actual latency*. The
delay is ``engine.output.tracks.DelayedVoiceTrack``'s: each chunk is released
once a video frame showing its start has left. :class:`SpeakerVoice` plays what
it releases on an output device through ``sounddevice``.
"""

import asyncio
import contextlib
from typing import Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError

from engine.live.sources import AudioChunk, AudioInputError, find_device, import_sounddevice
from engine.output.tracks import DelayedVoiceTrack

LAYOUTS = {1: "mono", 2: "stereo"}


def voice_frame(chunk: AudioChunk) -> av.AudioFrame | None:
    """The chunk as an s16 PyAV frame (what the delayed voice and the Opus encoder take); None beyond stereo."""
    layout = LAYOUTS.get(chunk.channels)
    if layout is None:
        return None
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(chunk.samples, dtype=np.int16).reshape(1, -1), format="s16", layout=layout
    )
    frame.sample_rate = chunk.rate_hz
    return frame


class SpeakerVoice:
    """Plays a :class:`DelayedVoiceTrack` on an output device, as the track releases it."""

    def __init__(self, voice: DelayedVoiceTrack, device: str | None) -> None:
        """``device``: index or part of a name (``engine.live.sources.find_device``), None for the default.

        Raises:
            AudioInputError: sounddevice is missing or no such output device exists.
        """
        self._sounddevice = import_sounddevice()
        self._device = find_device(device, kind="output")
        self._voice = voice
        self._stream: Any = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._play(), name="voice-out")

    async def close(self) -> None:
        self._voice.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._stream is not None:
            self._stream.close()

    async def _play(self) -> None:
        try:
            while True:
                frame = await self._voice.recv()
                data = frame.to_ndarray().tobytes()
                if self._stream is None:
                    self._stream = self._open(frame.sample_rate, len(frame.layout.channels))
                await asyncio.to_thread(self._stream.write, data)
        except MediaStreamError:
            return

    def _open(self, rate_hz: int, channels: int) -> Any:
        try:
            stream = self._sounddevice.RawOutputStream(
                device=self._device, samplerate=rate_hz, channels=channels, dtype="int16", latency="low"
            )
        except Exception as exc:  # PortAudio's errors: no device, format refused
            raise AudioInputError(f"cannot open the voice output device: {exc}") from None
        stream.start()
        return stream
