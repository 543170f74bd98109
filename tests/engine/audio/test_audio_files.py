"""load_audio_file: files written here (stdlib wave, PyAV encoders) -> 16 kHz mono."""

import wave
from pathlib import Path

import av
import numpy as np
import pytest

from engine.audio import SAMPLE_RATE_HZ, AudioConverter, AudioFileError, load_audio_file

TONE_HZ = 440.0


def sine(rate_hz: int, seconds: float, amplitudes: list[float]) -> np.ndarray:
    """Shape (n, channels), float64; channel c is a 440 Hz sine of amplitudes[c]."""
    t = np.arange(round(rate_hz * seconds)) / rate_hz
    return np.sin(2 * np.pi * TONE_HZ * t)[:, None] * np.asarray(amplitudes)


def write_wav(path: Path, rate_hz: int, samples: np.ndarray, sample_bytes: int = 2) -> None:
    """PCM WAV with the stdlib. ``samples``: (n, channels) floats, full scale 1.0;
    stored as 8-bit unsigned, 16-bit or 24-bit signed."""
    scale = 2.0 ** (8 * sample_bytes - 1)
    ints = np.clip(np.round(samples * scale), -scale, scale - 1).astype("<i4")
    if sample_bytes == 1:
        data = (ints + 128).astype(np.uint8).tobytes()
    else:  # the low bytes of each little-endian int32
        data = ints.view(np.uint8).reshape(-1, 4)[:, :sample_bytes].tobytes()
    with wave.open(str(path), "wb") as out:
        out.setnchannels(samples.shape[1])
        out.setsampwidth(sample_bytes)
        out.setframerate(rate_hz)
        out.writeframes(data)


def peak_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(spectrum.argmax() * SAMPLE_RATE_HZ / x.size)


def test_44k_stereo_wav_loads_like_the_live_converter(tmp_path: Path) -> None:
    samples = sine(44_100, 1.0, [0.5, 0.25])
    path = tmp_path / "stereo.wav"
    write_wav(path, 44_100, samples)
    loaded = load_audio_file(path)
    assert loaded.dtype == np.float32 and loaded.ndim == 1
    assert loaded.size == SAMPLE_RATE_HZ
    assert abs(peak_hz(loaded) - TONE_HZ) <= 1.0
    # The same samples pushed live in one chunk: chunking does not change the
    # resampler's output (see test_audio_resample.py), so the two agree.
    pcm = np.round(samples * 32768).astype(np.int16)
    live = AudioConverter(input_rate_hz=44_100, channels=2)
    np.testing.assert_allclose(loaded, np.concatenate([live.push(pcm), live.flush()]), atol=1e-6)


@pytest.mark.parametrize(("sample_bytes", "rate_hz"), [(1, 8_000), (3, 48_000)])
def test_8_and_24_bit_wav_are_rescaled_to_full_scale_one(tmp_path: Path, sample_bytes: int, rate_hz: int) -> None:
    path = tmp_path / f"{8 * sample_bytes}bit.wav"
    write_wav(path, rate_hz, sine(rate_hz, 0.5, [0.5]), sample_bytes)
    loaded = load_audio_file(path)
    assert loaded.size == SAMPLE_RATE_HZ // 2
    rms = np.sqrt(np.mean(loaded[500:-500] ** 2))
    assert rms == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


def test_compressed_planar_file_loads(tmp_path: Path) -> None:
    """MP3 decodes to planar float (fltp), unlike PCM WAV."""
    if "libmp3lame" not in av.codecs_available:
        pytest.skip("this FFmpeg build has no MP3 encoder")
    path = tmp_path / "tone.mp3"
    planar = np.ascontiguousarray(sine(44_100, 1.0, [0.5, 0.25]).T.astype(np.float32))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libmp3lame", rate=44_100, layout="stereo")
        frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout="stereo")
        frame.sample_rate = 44_100
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    loaded = load_audio_file(path)
    assert abs(loaded.size - SAMPLE_RATE_HZ) <= 0.05 * SAMPLE_RATE_HZ  # codec delay/padding
    assert abs(peak_hz(loaded) - TONE_HZ) <= 1.0
    rms = np.sqrt(np.mean(loaded[2000:-2000] ** 2))
    assert rms == pytest.approx(0.375 / np.sqrt(2), rel=0.1)  # lossy: 10 %


def test_zero_length_wav_gives_an_empty_array(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    write_wav(path, 44_100, np.zeros((0, 2)))
    loaded = load_audio_file(path)
    assert loaded.shape == (0,) and loaded.dtype == np.float32


def test_missing_file_is_named_in_the_error(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.wav"
    with pytest.raises(AudioFileError, match="nowhere.wav"):
        load_audio_file(path)


@pytest.mark.parametrize(
    "content",
    [b"", b"RIFF\x10\x00\x00\x00WAVEfmt ", bytes(range(256)) * 8],
    ids=["empty", "truncated", "garbage"],
)
def test_unreadable_file_is_named_in_the_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.wav"
    path.write_bytes(content)
    with pytest.raises(AudioFileError, match="broken.wav") as error:
        load_audio_file(path)
    assert isinstance(error.value, ValueError)
    assert "Errno" not in str(error.value)  # issue 13: FFmpeg's errno 1094995529 reached the user


def test_directory_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError, match=str(tmp_path.name)):
        load_audio_file(tmp_path)


def test_file_without_audio_stream_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "video_only.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    with pytest.raises(AudioFileError, match="video_only.mp4.*no audio stream"):
        load_audio_file(path)


def test_unsupported_sample_rate_is_explained(tmp_path: Path) -> None:
    path = tmp_path / "hires.wav"
    write_wav(path, 96_000, sine(96_000, 0.1, [0.5]))
    with pytest.raises(AudioFileError, match="hires.wav.*96000.*accepted"):
        load_audio_file(path)
