"""``python -m engine.output``: a recording spoken into VMC and Live Link receivers, in real time."""

import asyncio
import os
import subprocess
import sys
import wave
from pathlib import Path

import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import AsyncIOOSCUDPServer

from engine.output.__main__ import main
from tests.engine.output.speech import speech_then_silence

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.slow
async def test_a_recording_drives_vmc_and_live_link_receivers(tmp_path: Path) -> None:
    wav_path = tmp_path / "one_second.wav"
    with wave.open(str(wav_path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(speech_then_silence()[:16000].tobytes())
    loop = asyncio.get_running_loop()
    applied: list[float] = []
    dispatcher = Dispatcher()
    dispatcher.map("/VMC/Ext/Blend/Apply", lambda address: applied.append(loop.time()))
    vmc_transport, _ = await AsyncIOOSCUDPServer(("127.0.0.1", 0), dispatcher, loop).create_serve_endpoint()
    packets: list[bytes] = []

    class LiveLink(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            packets.append(data)

    link_transport, _ = await loop.create_datagram_endpoint(LiveLink, local_addr=("127.0.0.1", 0))
    vmc_port = vmc_transport.get_extra_info("sockname")[1]
    link_port = link_transport.get_extra_info("sockname")[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "clients" / "python")])}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "engine.output", str(wav_path), "--vmc", f"127.0.0.1:{vmc_port}", "--vmc-shapes",
        "vrm0", "--livelink", f"127.0.0.1:{link_port}", stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    await asyncio.sleep(0.1)
    vmc_transport.close()
    link_transport.close()
    assert process.returncode == 0, stderr.decode()
    assert "sent 25 frames to vmc, livelink" in stderr.decode()
    assert len(applied) == len(packets) == 25
    assert 0.8 < applied[-1] - applied[0] < 1.2  # paced like the voice: 24 frame periods of 40 ms


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["speech.wav"], "name at least one receiver"),
        (["speech.wav", "--vmc", "127.0.0.1:port"], "is not a number"),
        (["speech.wav", "--livelink", "127.0.0.1", "--fps", "0"], "--fps must be in 1..100"),
    ],
)
def test_bad_arguments_are_explained(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and needle in capsys.readouterr().err


def test_an_unreadable_recording_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "missing.wav"), "--vmc", "127.0.0.1"]) == 2
    assert "cannot load audio file" in capsys.readouterr().err
