"""A session's forwarding to avatar apps: real receivers, one session per destination, all or nothing, and an
app that fails never stops the others."""

import math
from pathlib import Path

import numpy as np
import pytest

from engine.au.vocabulary import N_AUS
from engine.output.destinations import Destinations
from engine.output.errors import ForwardRefused, OutputUnavailable
from engine.output.forward import Forwarder, ForwardSettings
from tests.engine.output.receivers import (
    FakeVTubeStudio,
    LiveLinkReceiver,
    VmcReceiver,
    settle,
    settle_packets,
)
from tests.engine.output.speech import FPS, au_frame, drive, speaking, speech_then_silence


def forwarder(tmp_path: Path, **entries: list[str]) -> Forwarder:
    settings = ForwardSettings(
        destinations=Destinations.from_entries(entries), vmc_shapes="arkit", vts_token_path=tmp_path / "token.json"
    )
    return Forwarder(settings)


async def test_every_frame_reaches_every_chosen_app(
    vmc_receiver: tuple[VmcReceiver, int], live_link: tuple[LiveLinkReceiver, int], tmp_path: Path
) -> None:
    vmc, vmc_port = vmc_receiver
    face, face_port = live_link
    apps = forwarder(tmp_path, vmc=[f"127.0.0.1:{vmc_port}"], livelink=[f"stage=127.0.0.1:{face_port}"])
    forwards = apps.session("s1", fps=FPS)
    assert await forwards.choose([("vmc", None), ("livelink", "stage")]) == [("vmc", "default"), ("livelink", "stage")]
    audio = speech_then_silence()
    sent = await drive(forwards, audio, realtime=False)
    await settle(vmc, len(sent))
    await settle_packets(face, len(sent))
    await forwards.close()
    assert len(vmc.frames) == len(face.packets) == len(sent) == math.ceil(audio.shape[0] * FPS / 16000)
    jaw = np.array([f.shapes["jawOpen"] for f in vmc.frames])
    talking = speaking(audio, len(jaw))
    assert jaw[talking].mean() > 0.2 and jaw[talking].mean() > 5 * jaw[~talking].mean()
    np.testing.assert_allclose([p.values["JawOpen"] for p in face.packets], jaw, atol=1e-6)


async def test_only_what_the_operator_allowed_by_name(tmp_path: Path) -> None:
    forwards = forwarder(tmp_path, vmc=["127.0.0.1"]).session("s1", fps=FPS)
    with pytest.raises(ForwardRefused, match="forwards nothing to livelink: .* --livelink"):
        await forwards.choose([("livelink", None)])
    with pytest.raises(ForwardRefused, match="'10.0.0.7' is not one this server allows; allowed: default$"):
        await forwards.choose([("vmc", "10.0.0.7")])
    assert forwards.active == []


async def test_a_destination_serves_one_session_at_a_time(
    vmc_receiver: tuple[VmcReceiver, int], tmp_path: Path
) -> None:
    _, port = vmc_receiver
    apps = forwarder(tmp_path, vmc=[f"127.0.0.1:{port}"])
    first, second = apps.session("s1", fps=FPS), apps.session("s2", fps=FPS)
    await first.choose([("vmc", None)])
    with pytest.raises(OutputUnavailable, match="'default' is in use by another session; try again when it ends"):
        await second.choose([("vmc", None)])
    await first.choose([])  # turned off: free again
    assert await second.choose([("vmc", None)]) == [("vmc", "default")]
    await second.close()
    await first.choose([("vmc", None)])  # closed sessions free theirs too
    await first.close()


async def test_all_or_nothing_when_one_app_cannot_start(vmc_receiver: tuple[VmcReceiver, int], tmp_path: Path) -> None:
    _, port = vmc_receiver
    apps = forwarder(tmp_path, vmc=[f"127.0.0.1:{port}"], vts=["127.0.0.1:9"])  # nothing listens on port 9
    forwards = apps.session("s1", fps=FPS)
    with pytest.raises(OutputUnavailable, match="cannot reach VTube Studio at ws://127.0.0.1:9"):
        await forwards.choose([("vmc", None), ("vts", None)])
    assert forwards.active == []
    other = apps.session("s2", fps=FPS)
    assert await other.choose([("vmc", None)]) == [("vmc", "default")]  # the failed attempt held nothing
    await other.close()


async def test_an_app_that_fails_is_dropped_and_the_others_go_on(
    vmc_receiver: tuple[VmcReceiver, int], vts: tuple[FakeVTubeStudio, str], tmp_path: Path
) -> None:
    vmc, port = vmc_receiver
    app, url = vts
    stopped: list[tuple[str, str, str]] = []

    async def on_stopped(kind: str, destination: str, reason: str) -> None:
        stopped.append((kind, destination, reason))

    apps = forwarder(tmp_path, vmc=[f"127.0.0.1:{port}"], vts=[url])
    forwards = apps.session("s1", fps=FPS, on_stopped=on_stopped)
    await forwards.choose([("vmc", None), ("vts", None)])
    frames = [au_frame(i, np.zeros(N_AUS)) for i in range(6)]
    await forwards.send_aus(frames[0])
    await settle(vmc, 1)
    app.created.clear()  # VTube Studio's user deleted our parameters: it answers the next injection with an error
    for frame in frames[1:]:
        await forwards.send_aus(frame)
        await settle(vmc, frame.index + 1)
    await forwards.close()
    assert len(vmc.frames) == 6  # VMC never missed a frame
    assert [(kind, name) for kind, name, _ in stopped] == [("vts", "default")]
    assert "error 453: unknown parameters" in stopped[0][2]
    assert forwards.active == [] and len(app.injections) == 1


async def test_choosing_again_keeps_what_stays(
    vmc_receiver: tuple[VmcReceiver, int], vts: tuple[FakeVTubeStudio, str], tmp_path: Path
) -> None:
    _, port = vmc_receiver
    app, url = vts
    forwards = forwarder(tmp_path, vmc=[f"127.0.0.1:{port}"], vts=[url]).session("s1", fps=FPS)
    await forwards.choose([("vts", None), ("vmc", None)])
    assert await forwards.choose([("vts", None)]) == [("vts", "default")]
    assert app.authenticated_sessions == 1  # VTube Studio was not asked again
    await forwards.close()
