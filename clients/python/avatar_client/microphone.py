"""Live microphone input, through the optional ``sounddevice`` package (PortAudio)."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any


class MicrophoneUnavailable(RuntimeError):
    """sounddevice is not installed, or no input device works; the message says what to do."""


def import_sounddevice() -> Any:
    """The sounddevice module, or an error that says how to get it."""
    try:
        import sounddevice
    except ImportError as exc:
        raise MicrophoneUnavailable(
            "the microphone needs the sounddevice package (and PortAudio): pip install sounddevice "
            "(on Debian/Ubuntu also: apt install libportaudio2); or stream a WAV file: "
            "python -m avatar_client stream speech.wav"
        ) from exc
    except OSError as exc:  # the package is there, the PortAudio library is not
        raise MicrophoneUnavailable(f"sounddevice cannot load PortAudio ({exc}); apt install libportaudio2") from exc
    return sounddevice


async def microphone_chunks(
    sample_rate_hz: int, *, chunk_ms: int, channels: int = 1, seconds: float | None = None
) -> AsyncIterator[bytes]:
    """s16le PCM from the default input device, ``chunk_ms`` per item, for ``seconds`` (None: until cancelled)."""
    sounddevice = import_sounddevice()
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=50)  # 1 s at 20 ms: a stalled sender drops, never grows

    def callback(data: Any, frames: int, time: Any, status: Any) -> None:
        def put() -> None:
            if not queue.full():
                queue.put_nowait(bytes(data))

        loop.call_soon_threadsafe(put)

    blocksize = sample_rate_hz * chunk_ms // 1000
    try:
        stream = sounddevice.RawInputStream(
            samplerate=sample_rate_hz, blocksize=blocksize, channels=channels, dtype="int16", callback=callback
        )
    except Exception as exc:
        raise MicrophoneUnavailable(f"cannot open the microphone: {exc}") from exc
    with stream:
        deadline = None if seconds is None else loop.time() + seconds
        while deadline is None or loop.time() < deadline:
            yield await queue.get()
