"""The Godot 3 sample (clients/godot/) run headless against a real server: its drawn mouth opens in
speech and closes in silence."""

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

GODOT = shutil.which("godot3-server")
PROJECT = Path(__file__).resolve().parents[2] / "clients" / "godot"
FACE_LINE = re.compile(r"^FACE t=([\d.]+) jaw=([\d.]+) mouth_px=([\d.]+)$")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(GODOT is None, reason="Godot 3 headless is not installed (apt-get install godot3-server)"),
    pytest.mark.skipif(
        not resolve_source("cause", None).trained, reason="no trained CAUSE weights (models/weights/cause_step.onnx)"
    ),
]


@pytest_asyncio.fixture
async def server(server_config: ServerConfig) -> AsyncIterator[LiveServer]:
    async with live_server(replace(server_config, cause_path=None)) as running:  # the trained default CAUSE
        yield running


async def test_the_godot_face_talks_with_the_speech(server: LiveServer, tmp_path: Path) -> None:
    audio = speech_then_silence()
    wav_path = tmp_path / "speech.wav"
    with wave.open(str(wav_path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(audio.tobytes())
    process = await asyncio.create_subprocess_exec(
        str(GODOT),
        "--path",
        str(PROJECT),
        "--",
        f"--url={server.ws_url}",
        f"--wav={wav_path}",
        "--log",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 90)
    lines = stdout.decode().splitlines()
    assert process.returncode == 0, stderr.decode()[-2000:] + stdout.decode()[-2000:]
    faces = [FACE_LINE.match(line) for line in lines if line.startswith("FACE")]
    assert all(faces)
    time_s = np.array([float(m.group(1)) for m in faces if m])
    jaw = np.array([float(m.group(2)) for m in faces if m])
    mouth_px = np.array([float(m.group(3)) for m in faces if m])
    n_frames = int(np.ceil(audio.shape[0] * 25 / 16000))
    assert f"DONE frames={n_frames}" in lines
    # Every frame is handed to the face, in order, on the playback clock.
    assert len(time_s) == n_frames and np.all(np.diff(time_s) > 0)
    talking = speaking(audio, n_frames)
    assert jaw[talking].mean() > 0.2 and jaw[talking].mean() > 5 * jaw[~talking].mean()
    assert mouth_px[talking].max() > 30 and mouth_px[-25:].max() < 6  # the drawn mouth: open, then shut
