"""Loading whole audio files (wav, mp3, ogg, m4a, ... anything FFmpeg decodes)
as 16 kHz mono float32, through the same :class:`AudioConverter` as live audio,
so that a file and a live stream of the same sound give the same samples."""

import os

import av
import numpy as np

from engine.audio.errors import AudioFileError, AudioFormatError
from engine.audio.frames import frame_samples
from engine.audio.resample import AudioConverter


def load_audio_file(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode the first audio stream of a file to 16 kHz mono float32.

    Args:
        path: the file. Its sample rate must be 8000..48000 Hz and its channels
            1..8 (they are averaged).

    Returns:
        shape ``(n,)``, float32 in [-1, 1]; empty for a file with an audio
        stream but no samples.

    Raises:
        AudioFileError: the file is missing or unreadable, is not a media file
            FFmpeg can decode, has no audio stream, or its audio is in a format
            the converter does not accept. The message names the file.
    """
    name = os.fspath(path)
    try:
        with av.open(name) as container:
            if not container.streams.audio:
                raise AudioFileError(f"cannot load audio file {name!r}: it has no audio stream")
            pieces = _decode(container, container.streams.audio[0])
    except av.FFmpegError as exc:  # its str() starts with FFmpeg's errno ("[Errno 1094995529] ..."): not for people
        raise AudioFileError(f"cannot load audio file {name!r}: {exc.strerror or 'FFmpeg cannot read it'}") from exc
    except (OSError, AudioFormatError) as exc:
        raise AudioFileError(f"cannot load audio file {name!r}: {exc}") from exc
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)


def _decode(container: av.container.InputContainer, stream: av.AudioStream) -> list[np.ndarray]:
    """Decode every frame of ``stream`` and convert it; returns the 16 kHz pieces."""
    converter: AudioConverter | None = None
    pieces: list[np.ndarray] = []
    for frame in container.decode(stream):
        if converter is None:
            converter = AudioConverter(input_rate_hz=frame.sample_rate, channels=frame.layout.nb_channels)
        elif (frame.sample_rate, frame.layout.nb_channels) != (
            converter.input_rate_hz,
            converter.channels,
        ):
            raise AudioFormatError(
                f"the audio changes from {converter.input_rate_hz} Hz x {converter.channels} "
                f"channels to {frame.sample_rate} Hz x {frame.layout.nb_channels} mid-stream; "
                "accepted: one rate and channel count per file"
            )
        pieces.append(converter.push(frame_samples(frame)))
    if converter is not None:
        pieces.append(converter.flush())
    return pieces
