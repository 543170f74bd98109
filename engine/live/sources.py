"""Local audio inputs for a live session: a microphone, a file, or raw PCM on stdin, as timed chunks.

``avatar live`` and ``avatar publish`` take speech from any of these and feed
it to a :class:`~engine.live.LiveSession` chunk by chunk, each stamped with
the wall time it became available (``arrival_s``, ``time.perf_counter()``).
A file or a pipe stands in for a microphone, so they never run ahead of real
time: chunk k is released no sooner than k chunk durations after the first
(a pipe fed live by another program arrives at that pace anyway). A
microphone is read through the optional ``sounddevice`` package (PortAudio);
its callback thread hands blocks to the event loop through a bounded queue
(a stalled loop drops audio, it never queues it without bound).
"""

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from engine.audio import MAX_CHANNELS, load_audio_file
from engine.errors import EngineError
from engine.pipeline import SAMPLE_RATE_HZ

CHUNK_MS = 20
"""Duration of one chunk, ms: what a WebRTC packet carries, and what a microphone block is set to."""
MIC_QUEUE_CHUNKS = 50
"""Microphone blocks that may wait for the event loop (1 s at 20 ms); more are dropped."""
MAX_RATE_HZ = 192_000


class AudioInputError(EngineError, RuntimeError):
    """The input cannot be opened or read (no such device, no sounddevice, bad PCM settings): one line says why."""


@dataclass(frozen=True)
class AudioChunk:
    """``samples``: (n, channels) int16 at ``rate_hz``; ``arrival_s``: when it became available (perf_counter)."""

    samples: np.ndarray
    rate_hz: int
    channels: int
    arrival_s: float


AudioChunks = AsyncIterator[AudioChunk]


async def file_chunks(
    path: Path, *, chunk_ms: int = CHUNK_MS, clock: Callable[[], float] = time.perf_counter
) -> AudioChunks:
    """The file's audio (anything FFmpeg decodes, as 16 kHz mono), at real-time pace.

    Raises:
        AudioFileError: the file cannot be decoded (a one-line reason naming it).
    """
    audio = load_audio_file(path)
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)[:, None]
    step = SAMPLE_RATE_HZ * chunk_ms // 1000
    pieces = (pcm[start : start + step] for start in range(0, pcm.shape[0], step))
    async for chunk in _paced(_from_iterable(pieces), SAMPLE_RATE_HZ, 1, clock):
        yield chunk


async def pcm_chunks(
    stream: BinaryIO,
    *,
    rate_hz: int,
    channels: int,
    chunk_ms: int = CHUNK_MS,
    clock: Callable[[], float] = time.perf_counter,
) -> AudioChunks:
    """Raw s16le PCM (interleaved, ``channels`` x ``rate_hz``) from ``stream`` until it ends, never faster
    than real time. Reads happen on a thread (a pipe blocks)."""
    check_pcm_format(rate_hz, channels)
    frame_bytes = 2 * channels
    chunk_bytes = rate_hz * chunk_ms // 1000 * frame_bytes

    async def blocks() -> AsyncIterator[np.ndarray]:
        pending = b""
        while True:
            data = await asyncio.to_thread(stream.read, chunk_bytes - len(pending))
            if not data:
                break
            pending += data
            if len(pending) >= chunk_bytes:
                yield np.frombuffer(pending, dtype="<i2").reshape(-1, channels).astype(np.int16)
                pending = b""
        whole = len(pending) // frame_bytes * frame_bytes
        if whole:
            yield np.frombuffer(pending[:whole], dtype="<i2").reshape(-1, channels).astype(np.int16)

    async for chunk in _paced(blocks(), rate_hz, channels, clock):
        yield chunk


def stdin_chunks(*, rate_hz: int, channels: int, chunk_ms: int = CHUNK_MS) -> AudioChunks:
    """:func:`pcm_chunks` from this process's standard input."""
    return pcm_chunks(sys.stdin.buffer, rate_hz=rate_hz, channels=channels, chunk_ms=chunk_ms)


def check_pcm_format(rate_hz: int, channels: int) -> None:
    """AudioInputError unless ``rate_hz`` and ``channels`` describe PCM the engine accepts."""
    if not 8000 <= rate_hz <= MAX_RATE_HZ:
        raise AudioInputError(f"the PCM sample rate must be 8000..{MAX_RATE_HZ} Hz, got {rate_hz}")
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioInputError(f"the PCM channel count must be 1..{MAX_CHANNELS}, got {channels}")


# -- microphone (sounddevice) ----------------------------------------------------------------------


def import_sounddevice() -> Any:
    """The sounddevice module, or an AudioInputError that says how to get it."""
    try:
        import sounddevice
    except ImportError:
        raise AudioInputError(
            "the microphone needs the mic extra: pip install 'avatar-engine[mic]' "
            "(or feed a file: --input speech.wav, or PCM on stdin: --input -)"
        ) from None
    except OSError as exc:  # the package is there, PortAudio is not
        raise AudioInputError(
            f"sounddevice cannot load PortAudio ({exc}); on Debian/Ubuntu: apt install libportaudio2"
        ) from None
    return sounddevice


def find_device(device: str | None, *, kind: str) -> int | None:
    """The PortAudio index of ``device`` (an index, or part of a name, case-insensitive) with ``kind``
    ("input" or "output") channels; None for the system default. AudioInputError when none or several match."""
    if device is None:
        return None
    sounddevice = import_sounddevice()
    devices = list(sounddevice.query_devices())
    key = f"max_{kind}_channels"
    if device.isdigit():
        index = int(device)
        if index >= len(devices) or devices[index][key] < 1:
            raise AudioInputError(f"no {kind} device with index {index}; see --list-devices")
        return index
    matches = [i for i, info in enumerate(devices) if device.lower() in info["name"].lower() and info[key] > 0]
    if not matches:
        raise AudioInputError(f"no {kind} device named like {device!r}; see --list-devices")
    if len(matches) > 1:
        names = ", ".join(f"{i}: {devices[i]['name']}" for i in matches)
        raise AudioInputError(f"{device!r} names several {kind} devices ({names}); give the index")
    return matches[0]


def describe_devices() -> str:
    """The audio devices PortAudio sees, one a line: index, name, input and output channels, default rate."""
    sounddevice = import_sounddevice()
    lines = []
    for index, info in enumerate(sounddevice.query_devices()):
        lines.append(
            f"{index:3d}  {info['name']}  (in {info['max_input_channels']}, out {info['max_output_channels']}, "
            f"{info['default_samplerate']:.0f} Hz)"
        )
    return "\n".join(lines) if lines else "no audio devices found"


async def microphone_chunks(
    device: str | None = None,
    *,
    rate_hz: int | None = None,
    channels: int = 1,
    chunk_ms: int = CHUNK_MS,
    clock: Callable[[], float] = time.perf_counter,
) -> AudioChunks:
    """s16 blocks from an input device (None: the default) at ``rate_hz`` (None: the device's own), until
    cancelled. Each block is stamped when PortAudio handed it over."""
    sounddevice = import_sounddevice()
    index = find_device(device, kind="input")
    if rate_hz is None:
        rate_hz = int(sounddevice.query_devices(index, "input")["default_samplerate"])
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[AudioChunk] = asyncio.Queue(maxsize=MIC_QUEUE_CHUNKS)

    def put(chunk: AudioChunk) -> None:
        if not queue.full():
            queue.put_nowait(chunk)

    def callback(data: Any, frames: int, time_info: Any, status: Any) -> None:
        samples = np.frombuffer(bytes(data), dtype=np.int16).reshape(-1, channels)
        loop.call_soon_threadsafe(put, AudioChunk(samples, rate_hz, channels, clock()))

    try:
        stream = sounddevice.RawInputStream(
            device=index,
            samplerate=rate_hz,
            blocksize=rate_hz * chunk_ms // 1000,
            channels=channels,
            dtype="int16",
            callback=callback,
        )
    except Exception as exc:  # PortAudio's errors: no device, format refused, busy
        raise AudioInputError(f"cannot open the microphone: {exc}") from None
    with stream:
        while True:
            yield await queue.get()


# -- pacing ----------------------------------------------------------------------------------------


async def _from_iterable(pieces: Any) -> AsyncIterator[np.ndarray]:
    for piece in pieces:
        yield piece


async def _paced(
    blocks: AsyncIterator[np.ndarray], rate_hz: int, channels: int, clock: Callable[[], float]
) -> AudioChunks:
    """Each block once real time has reached its end (counted from the first block), stamped then."""
    started_s: float | None = None
    samples_done = 0
    async for block in blocks:
        samples_done += block.shape[0]
        now = clock()
        if started_s is None:
            started_s = now - block.shape[0] / rate_hz  # the first block is whole when it arrives
        due_s = started_s + samples_done / rate_hz
        if due_s > now:
            await asyncio.sleep(due_s - now)
            now = clock()
        yield AudioChunk(block, rate_hz, channels, now)
