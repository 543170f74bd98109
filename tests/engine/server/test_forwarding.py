"""Sessions forwarding their face to avatar apps through the real server: a python-osc VMC receiver, a server
speaking VTube Studio's API and the Live Link decoder, driven by WebSocket and WebRTC sessions."""

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import pytest_asyncio

from avatar_client import AvatarClient, ServerError, read_wav, stream
from avatar_protocol import Hello
from engine.audio import SAMPLE_SPEECH
from engine.backends.model_files import resolve_source
from engine.output.destinations import Destinations
from engine.output.forward import ForwardSettings
from engine.server.config import ServerConfig
from tests.engine.output.receivers import (
    FakeVTubeStudio,
    LiveLinkReceiver,
    VmcReceiver,
    running_live_link,
    running_vmc_receiver,
    running_vtube_studio,
    settle,
    settle_packets,
)
from tests.engine.output.speech import speaking
from tests.engine.server.live_server import LiveServer, live_server
from tests.engine.server.webrtc_client import PacedSpeechTrack, connect, running_server, sample_speech, wait_for

pytestmark = pytest.mark.asyncio(loop_scope="module")

TRAINED = resolve_source("cause", None).trained


class Apps:
    """The avatar apps the test server may forward to, each a real receiver on loopback."""

    def __init__(
        self, vmc: tuple[VmcReceiver, int], vts: tuple[FakeVTubeStudio, str], link: tuple[LiveLinkReceiver, int]
    ) -> None:
        (self.vmc, self.vmc_port), (self.vts, self.vts_url), (self.link, self.link_port) = vmc, vts, link

    def settings(self, token_path: Path) -> ForwardSettings:
        entries = {
            "vmc": [f"127.0.0.1:{self.vmc_port}"],
            "vts": [f"studio={self.vts_url}"],
            "livelink": [f"127.0.0.1:{self.link_port}"],
        }
        return ForwardSettings(destinations=Destinations.from_entries(entries), vts_token_path=token_path)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def apps() -> AsyncIterator[Apps]:
    async with running_vmc_receiver() as vmc, running_vtube_studio() as vts, running_live_link() as link:
        yield Apps(vmc, vts, link)


@pytest.fixture(scope="module")
def config(server_config: ServerConfig, apps: Apps, tmp_path_factory: pytest.TempPathFactory) -> ServerConfig:
    """The trained CAUSE (the mouth must follow the speech), the small generator, the apps above allowed."""
    token_path = tmp_path_factory.mktemp("vts") / "token.json"
    return replace(server_config, cause_path=None, forwarding=apps.settings(token_path), session_idle_timeout_s=5.0)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(config: ServerConfig) -> AsyncIterator[LiveServer]:
    async with live_server(config) as running:
        yield running


@pytest_asyncio.fixture(autouse=True, loop_scope="module")
async def fresh(server: LiveServer, apps: Apps) -> AsyncIterator[None]:
    apps.vmc.frames.clear()
    apps.link.packets.clear()
    apps.vts.injections.clear()
    yield
    await server.wait_until_idle()


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """The built-in sample then 2 s of silence, 16 kHz mono int16, (n, 1)."""
    samples = read_wav(SAMPLE_SPEECH).samples
    return np.concatenate([samples, np.zeros((32_000, 1), np.int16)])


async def refusal(server: LiveServer, hello: Hello) -> tuple[ServerError, int | None]:
    with pytest.raises(ServerError) as error:
        await AvatarClient.connect(server.ws_url, hello)
    return error.value, error.value.close_code


@pytest.mark.skipif(not TRAINED, reason="no trained CAUSE weights in models/weights/: random networks do not speak")
async def test_a_websocket_session_drives_a_vmc_receiver(server: LiveServer, apps: Apps, speech: np.ndarray) -> None:
    result = await stream(server.ws_url, speech, Hello(outputs=("blendshapes",), forward={"vmc": None}))
    await settle(apps.vmc, len(result.frames))
    assert result.ready.forward == {"vmc": "default"}
    assert len(apps.vmc.frames) == len(result.frames) == result.end.frames  # type: ignore[union-attr]
    mouth = np.array([sum(f.shapes[n] for n in ("aa", "ih", "ou", "ee", "oh")) for f in apps.vmc.frames])
    talking = speaking(speech[:, 0], len(mouth))
    assert mouth[talking].mean() > 0.2 and mouth[talking].mean() > 5 * mouth[~talking].mean()
    assert mouth[-25:].max() < 0.05  # the last second is silence: the mouth has closed
    times = [f.time_s for f in apps.vmc.frames]
    assert times == pytest.approx([r.audio_sample / 16000 for r in result.frames])  # the records' own clock


async def test_forwarding_is_refused_clearly(server: LiveServer, apps: Apps) -> None:
    error, close = await refusal(server, Hello(forward={"vmc": "10.0.0.7:39539"}))
    assert (error.code, close) == ("forward_refused", 1008)
    assert error.message == "vmc destination '10.0.0.7:39539' is not one this server allows; allowed: default"
    error, _ = await refusal(server, Hello(forward={"vts": "default"}))
    assert error.code == "forward_refused" and "allowed: studio" in error.message
    with pytest.raises(ServerError, match="bad_hello: forward: unknown kind 'osc'"):
        await AvatarClient.connect(server.ws_url, Hello(forward={"osc": None}))
    assert apps.vmc.frames == []  # nothing was sent anywhere


async def test_a_destination_in_use_is_unavailable_to_a_second_session(server: LiveServer, apps: Apps) -> None:
    async with await AvatarClient.connect(server.ws_url, Hello(forward={"livelink": None})) as first:
        error, close = await refusal(server, Hello(forward={"livelink": None, "vmc": None}))
        assert (error.code, close) == ("forward_unavailable", 1013)
        assert "livelink destination 'default' is in use by another session" in error.message
        await first.send_audio(np.zeros(8000, np.int16))
        await first.end()
        records = [record async for record in first]
    await settle_packets(apps.link, len(records))
    assert len(apps.link.packets) == len(records) == 13 and apps.vmc.frames == []  # all or nothing
    await server.wait_until_idle()
    async with await AvatarClient.connect(server.ws_url, Hello(forward={"livelink": None})) as again:
        assert again.ready.forward == {"livelink": "default"}  # free again once the first session ended


async def test_an_app_failing_mid_session_is_reported_and_the_rest_goes_on(
    server: LiveServer, apps: Apps, speech: np.ndarray
) -> None:
    hello = Hello(forward={"vmc": None, "vts": "studio"})
    async with await AvatarClient.connect(server.ws_url, hello) as client:
        assert client.ready.forward == {"vmc": "default", "vts": "studio"}
        records: list = []

        async def receive() -> None:
            async for record in client:
                records.append(record)

        receiver = asyncio.create_task(receive())
        half = speech.shape[0] // 2
        for start in range(0, half, 3200):
            await client.send_audio(speech[start : start + 3200])
        await wait_for(lambda: len(apps.vts.injections) >= 20, 10, "VTube Studio to get 20 injections")
        apps.vts.created.clear()  # the user deleted our parameters: VTube Studio refuses the next injection
        for start in range(half, speech.shape[0], 3200):
            await client.send_audio(speech[start : start + 3200])
            await asyncio.sleep(0.01)
        await client.end()
        await receiver
        stopped = client.forwards_stopped
    await settle(apps.vmc, len(records))
    assert [(s.kind, s.destination) for s in stopped] == [("vts", "studio")]
    assert "error 453: unknown parameters" in stopped[0].message
    assert len(records) == client.end_message.frames == len(apps.vmc.frames)  # type: ignore[union-attr]
    assert 20 <= len(apps.vts.injections) < len(records)


async def test_the_page_lists_the_destinations_by_name(server: LiveServer) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"http://{server.host}:{server.port}/config") as response:
        body = await response.json()
    assert body["forward"] == {"vmc": ["default"], "vts": ["studio"], "livelink": ["default"]}


@pytest.mark.timeout(60)
async def test_a_webrtc_session_picks_apps_on_its_control_channel(config: ServerConfig, apps: Apps) -> None:
    async with running_server(replace(config, output_size_px=128)) as (url, _):
        peer = await connect(url, PacedSpeechTrack(sample_speech(30.0)), keep_pictures=False)
        try:
            await wait_for(lambda: peer.control.readyState == "open", 10, "the control channel to open")
            peer.control.send(json.dumps({"type": "forward", "vmc": "nowhere"}))
            peer.control.send(json.dumps({"type": "forward", "vmc": True, "livelink": "default"}))
            await wait_for(lambda: len(peer.messages_of("applied", "error")) >= 2, 10, "two replies")
            await wait_for(lambda: len(apps.vmc.frames) >= 25, 10, "a second of VMC frames")
            peer.control.send(json.dumps({"type": "forward", "livelink": "default"}))  # VMC off, Live Link stays
            await wait_for(lambda: len(peer.messages_of("applied", "error")) >= 3, 10, "the third reply")
            vmc_frames = len(apps.vmc.frames)
            packets = len(apps.link.packets)
            await asyncio.sleep(0.5)
        finally:
            await peer.close()
    replies = peer.messages_of("applied", "error")
    assert "vmc destination 'nowhere' is not one this server allows" in replies[0]["error"]
    assert replies[1] == {"type": "applied", "of": "forward", "forward": {"vmc": "default", "livelink": "default"}}
    assert replies[2] == {"type": "applied", "of": "forward", "forward": {"livelink": "default"}}
    assert len(apps.vmc.frames) <= vmc_frames + 1  # at most one was on its way
    assert len(apps.link.packets) >= packets + 5  # 0.5 s at 25 fps, generously
