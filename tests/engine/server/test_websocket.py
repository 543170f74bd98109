"""The WebSocket API end to end: a real server on 127.0.0.1, real clients, real networks (small, random)."""

import asyncio
import io
import json
import math
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
from PIL import Image

from avatar_client import AvatarClient, ServerError, read_wav, stream
from avatar_protocol import Hello
from engine.au import AU_NAMES
from engine.au.arkit import BLENDSHAPE_NAMES, aus_to_blendshapes
from engine.audio import SAMPLE_SPEECH
from engine.backends.model_files import resolve_source
from engine.server.config import ServerConfig
from tests.engine.server.live_server import LiveServer, RawWebSocket, live_server

pytestmark = pytest.mark.asyncio(loop_scope="module")

IDLE_TIMEOUT_S = 2.0
"""The test server's idle timeout, and so its hello timeout."""
MOUTH_AUS = [AU_NAMES.index(name) for name in ("AU10", "AU12", "AU14", "AU15", "AU17", "AU20", "AU23", "AU25", "AU26")]


@pytest.fixture(scope="module")
def config(server_config: ServerConfig) -> ServerConfig:
    return replace(server_config, session_idle_timeout_s=IDLE_TIMEOUT_S)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(config: ServerConfig) -> AsyncIterator[LiveServer]:
    async with live_server(config) as running:
        yield running


@pytest_asyncio.fixture(autouse=True, loop_scope="module")
async def every_session_releases_its_slot(server: LiveServer) -> AsyncIterator[None]:
    yield
    await server.wait_until_idle()


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """The built-in sample: 8.7 s of 16 kHz mono int16 speech with a pause, (n, 1)."""
    audio = read_wav(SAMPLE_SPEECH)
    assert audio.sample_rate_hz == 16000 and audio.channels == 1
    return audio.samples


def expected_frames(samples_16k: int, fps: int = 25) -> int:
    return math.ceil(samples_16k * fps / 16000)


async def refused(server: LiveServer, *messages: bytes | str) -> tuple[dict, int, str]:
    """Send ``messages`` on a new connection; the server's error message, close code and close reason."""
    async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url) as ws:
        for message in messages:
            if isinstance(message, str):
                await ws.send_str(message)
            else:
                await ws.send_bytes(message)
        error = await ws.receive(timeout=10)
        if error.type is aiohttp.WSMsgType.TEXT and json.loads(error.data)["type"] == "ready":
            error = await ws.receive(timeout=10)
        assert error.type is aiohttp.WSMsgType.TEXT, error
        close = await ws.receive(timeout=10)
        assert close.type is aiohttp.WSMsgType.CLOSE, close
        return json.loads(error.data), close.data, close.extra


def hello(**fields: object) -> str:
    return json.dumps({"type": "hello", "version": 2, **fields})


# ---------------------------------------------------------------- the AU stream


async def test_speech_gives_one_record_per_frame_in_order(server: LiveServer, speech: np.ndarray) -> None:
    result = await stream(server.ws_url, speech, Hello())
    n = expected_frames(speech.shape[0])
    assert result.end is not None and result.end.audio_samples == speech.shape[0]
    assert len(result.frames) == result.end.frames == n
    assert abs(len(result.frames) - speech.shape[0] / 16000 * 25) <= 1
    assert [f.index for f in result.frames] == list(range(n))
    assert [f.seq for f in result.frames] == list(range(n))
    assert [f.audio_sample for f in result.frames] == [i * 640 for i in range(n)]
    aus = np.stack([f.aus for f in result.frames])
    assert aus.shape == (n, 17) and aus.min() >= 0.0 and aus.max() <= 5.0
    assert all(f.blendshapes is None for f in result.frames) and not result.pictures
    assert all(f.server_latency_us > 0 for f in result.frames)
    assert result.ready.fps == 25 and result.ready.au_names == AU_NAMES
    assert result.ready.lookahead_samples == 720 and result.ready.idle_timeout_s == IDLE_TIMEOUT_S


async def test_speech_and_silence_give_different_mouth_aus(server: LiveServer, speech: np.ndarray) -> None:
    # The fixture networks are random: which way the AUs move means nothing, but that they
    # follow the audio does. Silence gives a still face; speech moves the mouth AUs.
    talking = np.stack([f.aus for f in (await stream(server.ws_url, speech, Hello())).frames])
    silent = np.stack([f.aus for f in (await stream(server.ws_url, np.zeros(48_000, np.int16), Hello())).frames])
    assert len(silent) == 75
    speech_std = talking[:, MOUTH_AUS].std(axis=0)
    silence_std = silent[10:, MOUTH_AUS].std(axis=0)  # after the network's left context has filled with silence
    assert speech_std.mean() > 0.1 and silence_std.mean() < 0.05
    assert (speech_std > 3 * silence_std).sum() >= len(MOUTH_AUS) - 1
    assert np.abs(talking[:, MOUTH_AUS].mean(axis=0) - silent[10:, MOUTH_AUS].mean(axis=0)).max() > 0.1


@pytest.mark.slow
@pytest.mark.skipif(
    not resolve_source("cause", None).trained,
    reason="no trained CAUSE weights in models/weights/ (cause_step.onnx): "
    "random networks do not open the mouth for speech",
)
async def test_trained_network_opens_the_mouth_more_during_speech(config: ServerConfig, speech: np.ndarray) -> None:
    trained = replace(config, cause_path=None, generator_path=None)
    async with live_server(trained) as running:
        talking = np.stack([f.aus for f in (await stream(running.ws_url, speech, Hello())).frames])
        silent = np.stack([f.aus for f in (await stream(running.ws_url, np.zeros(48_000, np.int16), Hello())).frames])
    open_index = [AU_NAMES.index("AU25"), AU_NAMES.index("AU26")]
    assert talking[:, open_index].mean() > silent[:, open_index].mean() + 0.1


async def test_blendshapes_in_json_match_the_binary_aus(server: LiveServer, speech: np.ndarray) -> None:
    audio = speech[:16_000]
    binary = await stream(server.ws_url, audio, Hello(outputs=("aus",)), chunk_ms=100)
    as_json = await stream(server.ws_url, audio, Hello(outputs=("aus", "blendshapes"), encoding="json"), chunk_ms=100)
    assert as_json.ready.blendshape_names == BLENDSHAPE_NAMES and as_json.ready.encoding == "json"
    assert len(binary.frames) == len(as_json.frames) == 25
    aus = np.stack([f.aus for f in binary.frames])
    np.testing.assert_allclose(np.stack([f.aus for f in as_json.frames]), aus, atol=1e-4)
    np.testing.assert_allclose(np.stack([f.blendshapes for f in as_json.frames]), aus_to_blendshapes(aus), atol=2e-4)


async def test_resampled_stereo_float_audio_keeps_the_clock(server: LiveServer, speech: np.ndarray) -> None:
    # 1.5 s at 48 kHz stereo f32le: the server resamples to its 16 kHz clock
    mono = np.repeat(speech[:24_000, 0].astype(np.float32) / 32768.0, 3)
    stereo = np.stack([mono, mono * 0.5], axis=1)
    hello_48k = Hello(sample_rate_hz=48_000, sample_format="f32le", channels=2, fps=30)
    result = await stream(server.ws_url, stereo, hello_48k)
    assert result.end is not None and abs(result.end.audio_samples - 24_000) <= 1
    assert len(result.frames) == expected_frames(result.end.audio_samples, 30)
    assert abs(len(result.frames) - 1.5 * 30) <= 1
    assert result.frames[-1].audio_sample == (len(result.frames) - 1) * 16000 // 30


async def test_pictures_come_as_jpeg_records_when_asked(server: LiveServer, speech: np.ndarray) -> None:
    result = await stream(server.ws_url, speech[:16_000], Hello(outputs=("aus", "frames")), realtime=True)
    assert len(result.frames) == 25
    assert result.pictures, "no picture rendered in 1 s of real-time audio"
    side = result.ready.frame_size_px
    assert side == server.context.config.output_size_px
    indices = [p.index for p in result.pictures]
    assert indices == sorted(set(indices)) and set(indices) <= {f.index for f in result.frames}
    for picture in result.pictures:
        with Image.open(io.BytesIO(picture.jpeg)) as image:
            assert image.format == "JPEG" and max(image.size) == side
        assert picture.audio_sample == picture.index * 640
    seqs = sorted([f.seq for f in result.frames] + [p.seq for p in result.pictures])
    assert seqs == list(range(len(seqs)))


# ---------------------------------------------------------------- bad input and limits


async def test_unsupported_sample_rate_is_refused_with_the_supported_range(server: LiveServer) -> None:
    with pytest.raises(ServerError) as error:
        await AvatarClient.connect(server.ws_url, Hello(sample_rate_hz=96_000))
    assert error.value.code == "unsupported_audio_format" and error.value.close_code == 1008
    assert "96000" in error.value.message and "from 8000 to 48000 Hz" in error.value.message


@pytest.mark.parametrize(
    ("messages", "code", "close_code", "needle"),
    [
        (["hello, server"], "bad_message", 1008, "not valid JSON"),
        ([hello(sample_rate=16000)], "bad_hello", 1008, "unknown key(s) in hello: sample_rate"),
        ([b"\x00\x00"], "unexpected_binary", 1003, "first message must be the hello"),
        ([hello(channels=2), b"\x00" * 8, b"\x00" * 6], "truncated_audio", 1007, "multiple of 4 bytes"),
        ([hello(), '{"type": "audio", "pcm": [0, 0]}'], "unexpected_text", 1003, "binary messages of s16le PCM"),
    ],
    ids=["not-json", "unknown-key", "binary-first", "truncated-frame", "text-for-audio"],
)
async def test_bad_input_gets_a_clear_error_and_close_code(
    server: LiveServer, messages: list, code: str, close_code: int, needle: str
) -> None:
    error, got_close_code, reason = await refused(server, *messages)
    assert error["type"] == "error" and error["code"] == code and needle in error["message"]
    assert got_close_code == close_code
    assert reason and reason[:40] == error["message"][:40]


async def test_a_message_after_the_end_message_is_refused(server: LiveServer, speech: np.ndarray) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url) as ws:
        await ws.send_str(hello())
        assert json.loads((await ws.receive(timeout=10)).data)["type"] == "ready"
        await ws.send_bytes(speech[:8000].tobytes())
        await ws.send_str('{"type": "end"}')
        await ws.send_bytes(speech[8000:8320].tobytes())  # too late
        message = await ws.receive(timeout=10)
        while message.type is aiohttp.WSMsgType.BINARY:  # the records of the audio before the end
            message = await ws.receive(timeout=10)
        error = json.loads(message.data)
        close = await ws.receive(timeout=10)
    assert error["code"] == "unexpected_message" and "nothing may follow the end message" in error["message"]
    assert close.data == 1008


async def test_a_hello_written_with_float_numbers_is_accepted(server: LiveServer, speech: np.ndarray) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url) as ws:
        await ws.send_str('{"type": "hello", "version": 2, "sample_rate_hz": 16000.0, "fps": 25.0}')
        ready = json.loads((await ws.receive(timeout=10)).data)
        assert ready["type"] == "ready" and ready["fps"] == 25
        await ws.send_bytes(speech[:1600].tobytes())
        await ws.send_str('{"type": "end"}')
        kinds = []
        while (message := await ws.receive(timeout=10)).type is not aiohttp.WSMsgType.CLOSE:
            kinds.append("record" if message.type is aiohttp.WSMsgType.BINARY else json.loads(message.data)["type"])
    assert kinds == ["record"] * 3 + ["end"] and message.data == 1000


async def test_ready_names_only_what_the_records_carry(server: LiveServer, speech: np.ndarray) -> None:
    hello_app_order = Hello(outputs=("blendshapes",), blendshape_order="livelinkface")
    result = await stream(server.ws_url, speech[:3200], hello_app_order)
    assert result.ready.au_names == () and result.ready.blendshape_order == "livelinkface"
    assert result.ready.blendshape_names[15:17] == ("jawRight", "jawLeft")
    assert all(f.aus is None and f.blendshapes.shape == (52,) for f in result.frames)


async def test_oversized_message_is_refused_with_its_size(server: LiveServer) -> None:
    limit = server.context.config.max_message_bytes
    error, close_code, reason = await refused(server, hello(), bytes(limit + 2))
    assert error["code"] == "message_too_big" and close_code == 1009
    assert f"{limit + 2} bytes exceeds the limit of {limit} bytes" in error["message"]
    assert "exceeds the limit" in reason


async def test_far_oversized_message_is_cut_off_before_it_is_read(server: LiveServer) -> None:
    limit = server.context.config.max_message_bytes
    async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url) as ws:
        await ws.send_str(hello())
        assert json.loads((await ws.receive(timeout=10)).data)["type"] == "ready"
        try:
            await ws.send_bytes(bytes(4 * limit + 2))
        except ConnectionError:
            pass  # the server may close while the payload is still going out
        message = await ws.receive(timeout=10)
        assert message.type is aiohttp.WSMsgType.CLOSE and message.data == 1009


async def test_a_full_server_says_try_again_later(server: LiveServer) -> None:
    assert server.context.config.max_sessions == 2
    first = await AvatarClient.connect(server.ws_url)
    second = await AvatarClient.connect(server.ws_url)
    try:
        with pytest.raises(ServerError) as error:
            await AvatarClient.connect(server.ws_url)
        assert error.value.code == "server_full" and error.value.close_code == 1013
        assert "try again later" in error.value.message
    finally:
        await first.close()
    await asyncio.wait_for(_until(lambda: len(server.context.slots.active) == 1), 5)
    third = await AvatarClient.connect(server.ws_url)  # the freed slot is taken again
    await third.close()
    await second.close()


async def test_a_session_is_unaffected_by_another_failing_beside_it(server: LiveServer, speech: np.ndarray) -> None:
    audio = speech[16_000:64_000]
    alone = await stream(server.ws_url, audio, Hello())

    async def failing() -> tuple[dict, int]:
        vanishing = await RawWebSocket.connect(server.host, server.port)
        async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url) as client:
            await client.send_str(hello())
            assert json.loads((await client.receive(timeout=10)).data)["type"] == "ready"
            for _ in range(20):
                await client.send_bytes(bytes(640))
                await asyncio.sleep(0.01)
            await client.send_bytes(bytes(641))
            message = await client.receive(timeout=10)
            while message.type is aiohttp.WSMsgType.BINARY:  # its own records, up to the error
                message = await client.receive(timeout=10)
            error = json.loads(message.data)
            close = await client.receive(timeout=10)
        vanishing.abort()  # and a client that connected, said nothing and vanished
        return error, close.data

    beside, (error, close_code) = await asyncio.gather(stream(server.ws_url, audio, Hello()), failing())
    assert error["code"] == "truncated_audio" and close_code == 1007
    assert len(beside.frames) == len(alone.frames) == expected_frames(audio.shape[0])
    np.testing.assert_array_equal(np.stack([f.aus for f in beside.frames]), np.stack([f.aus for f in alone.frames]))


async def test_a_client_that_vanishes_mid_stream_is_cleaned_up(server: LiveServer, speech: np.ndarray) -> None:
    ws = await RawWebSocket.connect(server.host, server.port)
    await ws.send(hello(outputs=["aus", "frames"]))
    for start in range(0, 16_000, 320):
        await ws.send(speech[start : start + 320].tobytes())
    await asyncio.wait_for(_until(lambda: len(server.context.slots.active) == 1), 5)
    ws.abort()
    await server.wait_until_idle()
    result = await stream(server.ws_url, speech[:8000], Hello())  # the server carries on
    assert len(result.frames) == 13


async def test_no_hello_times_out(server: LiveServer) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url) as ws:
        error = await ws.receive(timeout=IDLE_TIMEOUT_S + 5)
        close = await ws.receive(timeout=5)
    assert json.loads(error.data)["code"] == "timeout" and close.data == 1008
    assert "no hello" in json.loads(error.data)["message"]


async def _until(condition) -> None:  # type: ignore[no-untyped-def]
    while not condition():
        await asyncio.sleep(0.02)
