"""The Unity sample's protocol code (clients/unity/AvatarEngine, plain C#) compiled with Mono and run
against a real server: records parsed, scheduled on the playback clock, the jaw opening in speech."""

import asyncio
import re
import shutil
import subprocess
import wave
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from engine.backends.model_files import resolve_source
from engine.server.config import ServerConfig
from tests.engine.output.speech import speaking, speech_then_silence
from tests.engine.server.live_server import LiveServer, live_server

MCS, MONO = shutil.which("mcs"), shutil.which("mono")
UNITY = Path(__file__).resolve().parents[2] / "clients" / "unity"
FACE_LINE = re.compile(r"^FACE t=([\d.]+) jaw=([\d.]+)$")

pytestmark = pytest.mark.skipif(
    MCS is None or MONO is None, reason="Mono's C# compiler is not installed (apt-get install mono-mcs)"
)


@pytest.fixture(scope="module")
def check_exe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The console check, built from the sample's sources with warnings as errors (C# 7.2, System only)."""
    out = tmp_path_factory.mktemp("unity") / "check.exe"
    sources = [UNITY / "AvatarEngine" / "AvatarProtocol.cs", UNITY / "AvatarEngine" / "AvatarStreamClient.cs"]
    build = subprocess.run(
        [
            MCS,
            "-langversion:7.2",
            "-warnaserror",
            f"-out:{out}",
            *map(str, sources),
            str(UNITY / "check" / "AvatarStreamCheck.cs"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    return out


def test_the_protocol_code_compiles(check_exe: Path) -> None:
    assert check_exe.stat().st_size > 0


@pytest_asyncio.fixture
async def server(server_config: ServerConfig) -> AsyncIterator[LiveServer]:
    async with live_server(replace(server_config, cause_path=None)) as running:  # the trained default CAUSE
        yield running


@pytest.mark.slow
@pytest.mark.skipif(not resolve_source("cause", None).trained, reason="no trained CAUSE weights in models/weights/")
async def test_the_csharp_client_follows_the_speech(check_exe: Path, server: LiveServer, tmp_path: Path) -> None:
    audio = speech_then_silence()
    wav_path = tmp_path / "speech.wav"
    with wave.open(str(wav_path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(audio.tobytes())
    process = await asyncio.create_subprocess_exec(
        str(MONO), str(check_exe), server.ws_url, str(wav_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode == 0, stderr.decode()
    lines = stdout.decode().splitlines()
    faces = [m for m in (FACE_LINE.match(line) for line in lines) if m]
    n_frames = int(np.ceil(audio.shape[0] * 25 / 16000))
    assert lines[-1] == f"DONE frames={n_frames}" and len(faces) == n_frames
    times = np.array([float(m.group(1)) for m in faces])
    jaw = np.array([float(m.group(2)) for m in faces])
    np.testing.assert_allclose(times, np.arange(n_frames) * 0.04, atol=1e-3)
    talking = speaking(audio, n_frames)
    assert jaw[talking].mean() > 0.2 and jaw[talking].mean() > 5 * jaw[~talking].mean() and jaw[-25:].max() < 0.02


async def test_a_refused_hello_is_reported(check_exe: Path, server: LiveServer, tmp_path: Path) -> None:
    wav_path = tmp_path / "hifi.wav"
    with wave.open(str(wav_path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(96000)  # above the 48 kHz the server takes
        wav.writeframes(bytes(9600))
    process = await asyncio.create_subprocess_exec(
        str(MONO), str(check_exe), server.ws_url, str(wav_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    assert "ERROR unsupported_audio_format: sample_rate_hz 96000 is not supported" in stderr.decode()
