"""VTube Studio output against a WebSocket server that speaks VTube Studio's documented plugin API."""

import asyncio
import json
import stat
from pathlib import Path

import numpy as np
import pytest

from engine.au.vocabulary import AU_NAMES, N_AUS
from engine.output.errors import OutputUnavailable
from engine.output.vtube_studio import KEEPALIVE_S, VTubeStudioError, VTubeStudioOutput
from tests.engine.output.receivers import FakeVTubeStudio
from tests.engine.output.speech import FPS, au_frame, drive, speaking, speech_then_silence


async def test_the_token_is_asked_for_once_and_each_session_authenticates(
    vts: tuple[FakeVTubeStudio, str], tmp_path: Path
) -> None:
    app, url = vts
    token_file = tmp_path / "config" / "vts-token.json"
    for _ in range(2):
        output = await VTubeStudioOutput.connect(url, token_path=token_file)
        await output.close()
    assert app.tokens_issued == ["token-0"] and app.authenticated_sessions == 2
    assert json.loads(token_file.read_text()) == {"authenticationToken": "token-0"}
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600  # it lets any process drive VTube Studio
    assert set(app.created) == {f"Avatar{au}" for au in AU_NAMES} and app.creations == 2 * N_AUS
    assert all(p["min"] == 0 and p["max"] == 5 and p["defaultValue"] == 0 for p in app.created.values())
    app.revoked = True  # the user revoked the plugin: the next connection asks again
    output = await VTubeStudioOutput.connect(url, token_path=token_file)
    await output.close()
    assert app.tokens_issued == ["token-0", "token-1"]


async def test_a_denied_plugin_says_so(vts: tuple[FakeVTubeStudio, str], tmp_path: Path) -> None:
    app, url = vts
    app.allow = False
    with pytest.raises(OutputUnavailable, match="did not allow the plugin: error 50: User has denied"):
        await VTubeStudioOutput.connect(url, token_path=tmp_path / "token.json")


async def test_an_unreachable_vtube_studio_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(OutputUnavailable, match="cannot reach VTube Studio at ws://127.0.0.1:9.*Start API"):
        await VTubeStudioOutput.connect("ws://127.0.0.1:9", token_path=tmp_path / "token.json")


async def test_speech_opens_the_mouth_through_injected_parameters(
    vts: tuple[FakeVTubeStudio, str], tmp_path: Path
) -> None:
    app, url = vts
    output = await VTubeStudioOutput.connect(url, token_path=tmp_path / "token.json")
    audio = speech_then_silence()
    sent = await drive(output, audio, realtime=False)
    await asyncio.sleep(0.2)
    await output.close()
    assert len(app.injections) == len(sent)
    mouth = np.array([values["MouthOpen"] for _, values, _ in app.injections])
    au26 = np.array([values["AvatarAU26"] for _, values, _ in app.injections])
    assert mouth.min() >= 0 and mouth.max() <= 1 and au26.min() >= 0 and au26.max() <= 5
    talking = speaking(audio, len(mouth))
    assert mouth[talking].mean() > 0.2 and mouth[talking].mean() > 5 * mouth[~talking].mean()
    assert mouth[-int(1.5 * FPS) :].max() < 0.02 and au26[talking].mean() > 1.0
    np.testing.assert_allclose(au26, [s.frame.aus[AU_NAMES.index("AU26")] for s in sent], atol=1e-4)


async def test_values_are_re_sent_while_frames_pause(vts: tuple[FakeVTubeStudio, str], tmp_path: Path) -> None:
    app, url = vts
    output = await VTubeStudioOutput.connect(url, token_path=tmp_path / "token.json")
    aus = np.zeros(N_AUS, np.float32)
    aus[AU_NAMES.index("AU26")] = 3.0
    await output.send_aus(au_frame(0, aus))
    await asyncio.sleep(2.2)  # no frames: the session's client paused
    await output.close()
    times = [t for t, _, _ in app.injections]
    assert len(times) >= 4 and max(np.diff(times)) < 1.0  # VTube Studio forgets values after 1 s
    assert min(np.diff(times)) >= KEEPALIVE_S * 0.9
    assert all(values["AvatarAU26"] == 3.0 for _, values, _ in app.injections)


async def test_a_refused_injection_ends_the_session_with_vtube_studios_reason(
    vts: tuple[FakeVTubeStudio, str], tmp_path: Path
) -> None:
    app, url = vts
    output = await VTubeStudioOutput.connect(url, token_path=tmp_path / "token.json")
    app.created.clear()  # the user deleted our parameters in VTube Studio
    await output.send_aus(au_frame(0, np.zeros(N_AUS)))
    await asyncio.sleep(0.2)
    with pytest.raises(VTubeStudioError, match="error 453: unknown parameters"):
        await output.send_aus(au_frame(1, np.zeros(N_AUS)))
    await output.close()


@pytest.mark.slow
async def test_injections_leave_at_once_at_the_frame_rate(vts: tuple[FakeVTubeStudio, str], tmp_path: Path) -> None:
    app, url = vts
    output = await VTubeStudioOutput.connect(url, token_path=tmp_path / "token.json")
    sent = await drive(output, speech_then_silence()[: 3 * 16000], realtime=True)
    await asyncio.sleep(0.2)
    await output.close()
    leave_ms = np.array([(s.sent_s - s.ready_s) * 1000 for s in sent])
    arrive_ms = np.array([(t - s.ready_s) * 1000 for (t, _, _), s in zip(app.injections, sent)])
    gaps_ms = np.diff([t for t, _, _ in app.injections]) * 1000
    print(
        f"VTube Studio injection: ready -> sent p50 {np.median(leave_ms):.2f} ms, p95 "
        f"{np.percentile(leave_ms, 95):.2f} ms; ready -> received p50 {np.median(arrive_ms):.2f} ms; "
        f"gap p50 {np.median(gaps_ms):.1f} ms"
    )
    assert len(app.injections) == len(sent) == 75
    assert np.median(leave_ms) < 5.0 and np.median(arrive_ms) < 5.0, (leave_ms, arrive_ms)
    assert np.percentile(leave_ms, 90) < 40.0, leave_ms  # generous: a loaded shared machine delays some
    assert 30 <= np.median(gaps_ms) <= 50, gaps_ms
