"""The Python client and its CLI against a real server on 127.0.0.1 (small random networks)."""

import asyncio
import csv
import importlib.util
import os
import subprocess
import sys
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

import avatar_client
from avatar_client import Hello, ServerError, read_wav, stream
from avatar_client.cli import main
from engine.au import AU_NAMES
from engine.au.arkit import BLENDSHAPE_NAMES
from engine.audio import SAMPLE_SPEECH
from engine.server.config import ServerConfig
from tests.engine.server.live_server import LiveServer, live_server

on_server_loop = pytest.mark.asyncio(loop_scope="module")
"""Async tests share the module's event loop, on which the server runs."""

REPO = Path(__file__).resolve().parents[2]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(server_config: ServerConfig) -> AsyncIterator[LiveServer]:
    async with live_server(server_config) as running:
        yield running


def write_wav(path: Path, samples: np.ndarray, rate: int, width: int = 2) -> Path:
    """Write (n, channels) float samples in [-1, 1] as integer PCM of ``width`` bytes."""
    if width == 1:
        raw = np.clip(np.round(samples * 127 + 128), 0, 255).astype(np.uint8).tobytes()
    elif width == 3:
        ints = np.clip(np.round(samples * 8388607), -8388608, 8388607).astype("<i4").reshape(-1, 1)
        raw = ints.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    else:
        full = 32767 if width == 2 else 2147483647
        raw = np.round(samples * full).astype(f"<i{width}").tobytes()
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(samples.shape[1])
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(raw)
    return path


def tone(seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return np.repeat((0.5 * np.sin(2 * np.pi * 220 * t))[:, None], channels, axis=1)


@on_server_loop
async def test_cli_writes_the_au_stream_as_csv(server: LiveServer, tmp_path: Path) -> None:
    out = tmp_path / "aus.csv"
    argv = ["stream", str(SAMPLE_SPEECH), "--url", server.ws_url, "--csv", str(out), "--blendshapes"]
    assert await asyncio.to_thread(main, argv) == 0
    with out.open(newline="") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["frame", "time_s", *AU_NAMES, *BLENDSHAPE_NAMES]
    body = rows[1:]
    assert len(body) == 218  # ceil(139031 samples * 25 / 16000)
    assert [int(r[0]) for r in body] == list(range(218))
    assert [float(r[1]) for r in body[:3]] == [0.0, 0.04, 0.08]
    values = np.array([[float(v) for v in r[2:]] for r in body])
    assert values.shape == (218, 17 + 52)
    assert values[:, :17].min() >= 0 and values[:, :17].max() <= 5
    assert values[:, 17:].min() >= 0 and values[:, 17:].max() <= 1


@on_server_loop
async def test_python_m_avatar_client_prints_csv_to_stdout(server: LiveServer, tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "tone.wav", tone(0.5, 22_050, channels=2), 22_050)
    client_root = Path(avatar_client.__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(client_root), str(REPO)])}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "avatar_client",
        "stream",
        str(wav),
        "--url",
        server.ws_url,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    lines = stdout.decode().splitlines()
    assert lines[0] == ",".join(["frame", "time_s", *AU_NAMES])
    assert len(lines) == 1 + 13  # 0.5 s at 25 fps, rounded up
    assert "13 frames for 0.50 s of audio at 25 fps" in stderr.decode()


@on_server_loop
async def test_cli_reports_a_refusal_from_the_server(server: LiveServer, tmp_path: Path, capsys) -> None:
    wav = write_wav(tmp_path / "hifi.wav", tone(0.1, 96_000), 96_000)
    assert await asyncio.to_thread(main, ["stream", str(wav), "--url", server.ws_url]) == 1
    err = capsys.readouterr().err
    assert "unsupported_audio_format" in err and "from 8000 to 48000 Hz" in err


def test_cli_explains_a_file_it_cannot_read(tmp_path: Path, capsys) -> None:
    not_wav = tmp_path / "speech.mp3"
    not_wav.write_bytes(b"ID3\x04 not a wav")
    assert main(["stream", str(not_wav)]) == 2
    assert "convert it, e.g. ffmpeg" in capsys.readouterr().err
    assert main(["stream", str(tmp_path / "missing.wav")]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("sounddevice") is not None, reason="sounddevice is installed here")
def test_microphone_without_sounddevice_says_what_to_install(capsys) -> None:
    assert main(["mic", "--seconds", "1"]) == 2
    assert "pip install sounddevice" in capsys.readouterr().err


@on_server_loop
async def test_realtime_pacing_takes_as_long_as_the_audio(server: LiveServer) -> None:
    samples = (tone(0.6, 16_000) * 32767).astype(np.int16)
    started = time.perf_counter()
    result = await stream(server.ws_url, samples, Hello(), realtime=True)
    assert time.perf_counter() - started >= 0.58
    assert len(result.frames) == 15


@on_server_loop
async def test_a_refused_session_raises_server_error(server: LiveServer) -> None:
    with pytest.raises(ServerError) as error:
        await stream(server.ws_url, np.zeros(160, np.int16), Hello(channels=9))
    assert error.value.code == "unsupported_audio_format" and error.value.close_code == 1008


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_read_wav_decodes_integer_pcm(tmp_path: Path, width: int) -> None:
    signal = tone(0.05, 8000, channels=2)
    audio = read_wav(write_wav(tmp_path / f"w{width}.wav", signal, 8000, width))
    assert audio.sample_rate_hz == 8000 and audio.channels == 2 and audio.samples.shape == signal.shape
    if width == 2:
        assert audio.sample_format == "s16le"
        np.testing.assert_allclose(audio.samples / 32767, signal, atol=1e-4)
    else:
        assert audio.sample_format == "f32le" and audio.samples.dtype == np.float32
        np.testing.assert_allclose(audio.samples, signal, atol=1.5 / 2 ** (8 * width - 1))
