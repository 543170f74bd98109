"""WHIP publishing against a minimal aiortc WHIP endpoint: media arrives, codecs, token, DELETE, errors,
reconnection. (End to end through a real SFU: test_whip_janus.py.)"""

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from engine.cli.main import main
from engine.live import LiveParts, LiveSession
from engine.live.build import PartsSettings, build_parts, running_parts
from engine.live.sources import AudioChunk, file_chunks
from engine.output.voice import voice_frame
from engine.output.whip import WhipClient, WhipError
from engine.output.whip_publisher import WhipPublisher
from engine.server.config import ServerConfig
from tests.engine.output.whip_endpoint import whip_endpoint

FPS = 25
SIZE_PX = 128
SPEECH = Path(__file__).parents[3] / "engine" / "audio" / "assets" / "sample_speech.wav"


@pytest_asyncio.fixture
async def parts(server_config: ServerConfig) -> AsyncIterator[LiveParts]:
    settings = PartsSettings(
        generator_path=server_config.generator_path, cause_path=server_config.cause_path, threads=1, serving=False
    )
    async with running_parts(build_parts(settings).parts) as running:
        yield running


async def _wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _video_codecs(sdp: str) -> set[str]:
    video = sdp.split("m=video", 1)[1].split("m=audio", 1)[0]
    return {name for name in re.findall(r"a=rtpmap:\d+ ([\w-]+)/", video) if name != "rtx"}


@pytest.mark.slow
@pytest.mark.timeout(90)
@pytest.mark.parametrize("codec", ["vp8", "h264"])
async def test_a_session_publishes_video_and_voice_then_deletes(parts: LiveParts, codec: str) -> None:
    """Speech through a live session, published: the endpoint decodes video in the chosen codec at about fps
    and Opus voice; the token went in the Authorization header; closing DELETEs the resource."""
    async with whip_endpoint(token="s3cret") as endpoint:
        session = LiveSession(parts, "pub", fps=FPS)
        publisher = WhipPublisher(
            WhipClient(endpoint.url, token="s3cret"),
            parts.avatar.portrait,
            fps=FPS,
            size_px=SIZE_PX,
            video_codec=codec,
            on_sent=lambda frame: session.record_sent("whip", frame),
        )
        session.add_video_output(publisher, reports_sends=True)
        await publisher.connect()
        publisher.start()
        await asyncio.wait_for(publisher.wait_connected(), 15)
        started_s = asyncio.get_running_loop().time()
        seconds = 0.0
        async for chunk in file_chunks(SPEECH):
            start = await session.push_audio(chunk.samples, rate_hz=16_000, channels=1, arrival_s=chunk.arrival_s)
            frame = voice_frame(chunk)
            assert frame is not None
            publisher.push_voice(frame, start)
            seconds += chunk.samples.shape[0] / chunk.rate_hz
            if seconds >= 3.0:
                break
        await session.finish()
        ended_s = asyncio.get_running_loop().time()
        await session.close()  # closes the publisher: DELETE
        (received,) = endpoint.sessions
        assert received.deleted
        assert received.headers["Authorization"] == "Bearer s3cret"
        assert received.headers["Content-Type"] == "application/sdp"
        assert _video_codecs(received.offer_sdp) == {codec.upper()}
        video = [(t, f) for t, f in received.video if started_s + 0.5 <= t <= ended_s]
        rate = (len(video) - 1) / (video[-1][0] - video[0][0])
        print(f"{codec}: {rate:.1f} fps received, {len(received.audio)} audio frames")
        assert 0.7 * FPS <= rate <= 1.2 * FPS
        assert (video[-1][1].width, video[-1][1].height) == (SIZE_PX, SIZE_PX)
        loud = [f for _, f in received.audio if np.abs(f.to_ndarray()).max() > 1000]
        assert len(loud) >= 50  # >= 1 s of the 3 s of speech came back as sound (20 ms Opus frames)


async def test_refusals_are_one_line_errors_that_say_whether_to_retry() -> None:
    async with whip_endpoint(token="right") as endpoint:
        client = WhipClient(endpoint.url, token="wrong")
        with pytest.raises(WhipError, match=r"refused the token \(401 Unauthorized\): check --token") as error:
            await client.publish("v=0\r\n")
        assert error.value.status == 401 and not error.value.retry
        for status, words, retry in [
            (403, "forbidden (403)", False),
            (404, "not found (404): check the URL", False),
            (500, "failed (HTTP 500): refused by the test; retrying", True),
            (503, "failed (HTTP 503)", True),
        ]:
            endpoint.refuse_with = status
            with pytest.raises(WhipError) as error:
                await client.publish("v=0\r\n")
            assert words in str(error.value) and "\n" not in str(error.value)
            assert error.value.status == status and error.value.retry is retry
    with pytest.raises(WhipError, match="cannot reach WHIP endpoint") as error:
        await WhipClient(endpoint.url).publish("v=0\r\n")  # the server is gone: connection refused
    assert error.value.retry and error.value.status is None


def test_bad_urls_are_refused_before_anything_loads(capsys: pytest.CaptureFixture) -> None:
    assert main(["publish", "--whip", "ftp://x/whip", "--input", str(SPEECH)]) == 2
    assert "the WHIP URL must be http:// or https://" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_the_publisher_reconnects_when_the_endpoint_drops_it(parts: LiveParts) -> None:
    async with whip_endpoint() as endpoint:
        errors: list[WhipError] = []
        publisher = WhipPublisher(
            WhipClient(endpoint.url),
            parts.avatar.portrait,
            fps=FPS,
            size_px=SIZE_PX,
            on_error=errors.append,
            backoff_s=(0.2, 0.4),
        )
        publisher.start()
        await asyncio.wait_for(publisher.wait_connected(), 15)
        await _wait_for(lambda: len(endpoint.sessions[0].video) > 5, 10, "video on the first connection")
        await endpoint.drop_current()
        await _wait_for(lambda: publisher.connections_made == 2, 30, "the publisher to reconnect")
        assert endpoint.sessions[0].deleted, "the lost session was not DELETEd"
        await _wait_for(lambda: len(endpoint.sessions[1].video) > 5, 10, "video on the second connection")
        # A refusal that retrying cannot fix stops publishing, once, with the reason.
        endpoint.refuse_with = 403
        await endpoint.drop_current()
        await _wait_for(lambda: bool(errors), 30, "the refusal to be reported")
        assert len(endpoint.sessions) == 2 and errors[0].status == 403 and publisher.error is errors[0]
        await publisher.close()


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_avatar_publish_with_a_wrong_token_exits_with_the_reason(
    server_config: ServerConfig, capsys: pytest.CaptureFixture
) -> None:
    async with whip_endpoint(token="right") as endpoint:
        argv = ["publish", "--whip", endpoint.url, "--token", "wrong", "--input", str(SPEECH), "--backend", "openvino"]
        argv += ["--threads", "1", "--generator", str(server_config.generator_path)]
        argv += ["--cause", str(server_config.cause_path)]
        status = await asyncio.to_thread(main, argv)
    assert status == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("avatar publish: error: WHIP endpoint http://127.0.0.1:")
    assert "refused the token (401 Unauthorized): check --token" in last


def test_voice_frames_are_s16_at_the_chunk_rate() -> None:
    chunk = AudioChunk(np.arange(-480, 480, dtype=np.int16).reshape(-1, 2), 48_000, 2, 0.0)
    frame = voice_frame(chunk)
    assert frame is not None and frame.format.name == "s16" and frame.sample_rate == 48_000
    assert frame.samples == 480 and np.array_equal(frame.to_ndarray().reshape(-1, 2), chunk.samples)
    assert voice_frame(AudioChunk(np.zeros((10, 3), np.int16), 16_000, 3, 0.0)) is None
