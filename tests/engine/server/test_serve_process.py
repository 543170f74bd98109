"""``avatar serve`` as a process: SIGTERM drains within the deadline; out of descriptors it keeps serving;
``--vmc`` forwards a session's face to a real VMC receiver.

These run the real command (``python -m engine.cli.main serve``) with the
small test networks, and talk to it over sockets as any client would.
"""

import asyncio
import contextlib
import json
import os
import re
import resource
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from avatar_client import FrameRecord, Hello, read_wav, stream
from engine.audio import SAMPLE_SPEECH
from engine.server.config import ServerConfig
from tests.engine.output.receivers import running_vmc_receiver, settle
from tests.engine.server.webrtc_client import PacedSpeechTrack, connect, sample_speech, wait_for

LISTENING = re.compile(rb"listening on (?P<host>[^\s;]+):(?P<port>\d+);")
REPO = Path(__file__).resolve().parents[3]


class ServeProcess:
    def __init__(self, process: asyncio.subprocess.Process, base_url: str, output: bytearray) -> None:
        self.process = process
        self.base_url = base_url
        self.output = output

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/ws"


@contextlib.asynccontextmanager
async def serve(
    config: ServerConfig, *flags: str, preexec_fn: Callable[[], None] | None = None
) -> AsyncIterator[ServeProcess]:
    """``avatar serve`` with the test networks on 127.0.0.1 and a free port, until the block ends."""
    assert config.generator_path is not None and config.cause_path is not None
    command = [
        sys.executable, "-m", "engine.cli.main", "serve", "--host", "127.0.0.1", "--port", "0",
        "--backend", "openvino", "--threads", "1", "--streams", "1", "--size", "256", "--max-sessions", "2",
        "--generator", str(config.generator_path), "--cause", str(config.cause_path), *flags,
    ]  # fmt: skip
    path = [str(REPO), str(REPO / "clients" / "python"), os.environ.get("PYTHONPATH", "")]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}
    process = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=environment,
        preexec_fn=preexec_fn,
    )
    assert process.stdout is not None
    output = bytearray()
    async with asyncio.timeout(120):
        while (match := LISTENING.search(output)) is None:
            line = await process.stdout.readline()
            assert line, f"avatar serve did not start:\n{output.decode(errors='replace')}"
            output += line
    reader = asyncio.create_task(_keep_reading(process, output))
    try:
        yield ServeProcess(process, f"http://{match['host'].decode()}:{match['port'].decode()}", output)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await reader


async def _keep_reading(process: asyncio.subprocess.Process, output: bytearray) -> None:
    assert process.stdout is not None
    while chunk := await process.stdout.read(65536):
        output += chunk


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return read_wav(SAMPLE_SPEECH).samples


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_sigterm_drains_every_session_within_the_deadline(server_config: ServerConfig) -> None:
    """Failure 4: SIGTERM with live sessions took ~35 s, sessions closed 1008 "no audio" instead of 1001."""
    async with serve(server_config) as server:
        async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url) as ws:
            await ws.send_str(json.dumps({"type": "hello", "version": 2}))
            assert json.loads((await ws.receive(timeout=10)).data)["type"] == "ready"
            peer = await connect(server.base_url, PacedSpeechTrack(sample_speech(30.0)), keep_pictures=False)
            try:
                await wait_for(lambda: len(peer.video.times_s) > 5, 20, "video")
                sender = asyncio.create_task(_send_silence(ws))
                signalled_s = time.perf_counter()
                server.process.send_signal(signal.SIGTERM)
                messages = []
                while (message := await ws.receive(timeout=10)).type is not aiohttp.WSMsgType.CLOSE:
                    if message.type is aiohttp.WSMsgType.TEXT:
                        messages.append(json.loads(message.data))
                closed_s = time.perf_counter() - signalled_s
                returncode = await asyncio.wait_for(server.process.wait(), 10)
                exited_s = time.perf_counter() - signalled_s
                await wait_for(lambda: peer.pc.connectionState in ("closed", "failed"), 5, "the peer to be hung up")
                sender.cancel()
            finally:
                await peer.close()
    print(f"SIGTERM: WebSocket closed after {closed_s:.2f} s, process exited after {exited_s:.2f} s")
    assert message.data == 1001 and messages[-1]["code"] == "shutting_down", (message, messages)
    assert returncode == 0
    assert exited_s < 2.0 + 2.0  # the 2 s drain deadline, and a loaded machine's margin for the exit itself
    assert b"stopped" in server.output


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_vmc_flag_forwards_a_websocket_session_to_a_vmc_receiver(
    server_config: ServerConfig, speech: np.ndarray
) -> None:
    """What an operator types: ``avatar serve --vmc stage=HOST:PORT --vmc-shapes arkit``; a client asks for "stage"."""
    async with running_vmc_receiver() as (vmc, port):
        async with serve(server_config, "--vmc", f"stage=127.0.0.1:{port}", "--vmc-shapes", "arkit") as server:
            hello = Hello(outputs=("blendshapes",), forward={"vmc": "stage"})
            result = await stream(server.ws_url, speech[:32_000], hello)
            await settle(vmc, len(result.frames))
    assert b"avatar apps sessions may forward to: vmc stage" in server.output
    assert result.ready.forward == {"vmc": "stage"}
    assert len(result.frames) == result.end.frames == len(vmc.frames) > 40  # type: ignore[union-attr]
    names = result.ready.blendshape_names
    for record, applied in zip(result.frames, vmc.frames, strict=True):  # the same values, by name
        assert record.blendshapes is not None
        assert [applied.shapes[name] for name in names] == pytest.approx(record.blendshapes.tolist(), abs=1e-6)


async def _send_silence(ws: aiohttp.ClientWebSocketResponse) -> None:
    with contextlib.suppress(ConnectionError):
        while True:
            await ws.send_bytes(bytes(640))
            await asyncio.sleep(0.02)


def _descriptor_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return apply


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_out_of_descriptors_it_refuses_quietly_and_keeps_serving(
    server_config: ServerConfig, speech: np.ndarray
) -> None:
    """Failure 5: at the descriptor limit (ulimit -n 128, 150 partial connections) the server stopped accepting
    and logged thousands of "Too many open files" tracebacks."""
    async with serve(server_config, "--header-timeout", "3", preexec_fn=_descriptor_limit(128)) as server:
        host, port = server.base_url.removeprefix("http://").split(":")
        times: list[float] = []
        healthy = asyncio.create_task(
            stream(
                server.ws_url,
                speech[: 8 * 16_000],
                Hello(),
                realtime=True,
                on_record=lambda r: times.append(time.perf_counter()) if isinstance(r, FrameRecord) else None,
            )
        )
        await asyncio.sleep(1.0)
        partial = []
        refused = 0
        for _ in range(150):
            try:
                reader, writer = await asyncio.open_connection(host, int(port))
                writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
                partial.append(writer)
            except OSError:
                refused += 1
        flood_s = time.perf_counter()
        result = await healthy
        for writer in partial:
            writer.close()
        during = [t for t in times if flood_s <= t <= flood_s + 4.0]
        async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url) as ws:  # and it still accepts
            await ws.send_str(json.dumps({"type": "hello", "version": 2}))
            assert json.loads((await ws.receive(timeout=10)).data)["type"] == "ready"
        log = server.output.decode(errors="replace")
    print(f"150 partial connections: {len(during) / 4.0:.1f} records/s for the healthy session meanwhile")
    assert result.end is not None and len(result.frames) == result.end.frames
    assert len(during) / 4.0 >= 0.7 * 25
    assert log.count("Too many open files") <= 2, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
