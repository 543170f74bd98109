"""``avatar publish`` end to end through a real SFU on loopback: Janus's VideoRoom behind simple-whip-server,
and a subscriber (aiortc through Janus's API) that sees and hears the avatar.

Skipped, with the install lines, where Janus, Node.js or simple-whip-server are missing (bench/janus.py).
"""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from bench import janus
from engine.au.liveness import LivenessSettings
from engine.audio import load_audio_file
from engine.avatar import Avatar
from engine.live import LiveParts, LiveSession
from engine.live.build import PartsSettings, build_parts, running_parts
from engine.live.sources import AudioChunk
from engine.output.voice import voice_frame
from engine.output.whip import WhipClient, WhipError
from engine.output.whip_publisher import WhipPublisher
from engine.pipeline import SAMPLE_RATE_HZ

pytestmark = pytest.mark.skipif(janus.missing() is not None, reason=str(janus.missing()))

FPS = 25
SIZE_PX = 256
SPEECH_S = 3.0
SILENCE_S = 4.0
SETTLE_S = 2.0
"""Silence frames count from this long after the speech ended (CAUSE's receptive field, the lookahead, a loaded
machine's lag)."""
CHUNK = SAMPLE_RATE_HZ // 50
MIN_NOISE_FLOOR = 0.02
SPEECH = Path(__file__).parents[3] / "engine" / "audio" / "assets" / "sample_speech.wav"


@pytest_asyncio.fixture
async def parts() -> AsyncIterator[LiveParts]:
    """The default, trained networks: the random small ones of the other tests move the mouth by ~0.5 of 255,
    which VP8 at an SFU's bitrate mostly quantizes away; the trained ones open and close it."""
    settings = PartsSettings(threads=1, serving=False)
    async with running_parts(build_parts(settings).parts) as running:
        yield running


@pytest_asyncio.fixture
async def sfu(tmp_path: Path) -> AsyncIterator[janus.Sfu]:
    async with janus.running_sfu(tmp_path) as running:
        yield running


async def _speak(session: LiveSession, publisher: WhipPublisher, audio: np.ndarray) -> None:
    """16 kHz mono float32 into the session and the voice, 20 ms at a time, at real-time pace."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)[:, None]
    for index, start in enumerate(range(0, pcm.shape[0], CHUNK)):
        chunk = AudioChunk(pcm[start : start + CHUNK], SAMPLE_RATE_HZ, 1, 0.0)
        first = await session.push_audio(chunk.samples, rate_hz=SAMPLE_RATE_HZ, channels=1)
        frame = voice_frame(chunk)
        assert frame is not None
        publisher.push_voice(frame, first)
        await asyncio.sleep(max(0.0, started + (index + 1) * CHUNK / SAMPLE_RATE_HZ - loop.time()))


def _mouth_and_background(avatar: Avatar) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    box = avatar.crop_box
    scale = SIZE_PX / max(avatar.portrait.shape[:2])
    rows = slice(int((box.y0 + 0.55 * box.size) * scale), int((box.y0 + 0.9 * box.size) * scale))
    cols = slice(int((box.x0 + 0.25 * box.size) * scale), int((box.x0 + 0.75 * box.size) * scale))
    return (rows, cols), (slice(0, int(box.y0 * scale) - 4), slice(0, int(box.x0 * scale) - 4))


def _changes(pictures: list[np.ndarray], region: tuple[slice, slice]) -> np.ndarray:
    crops = [p[region].astype(np.float32) for p in pictures]
    return np.asarray([np.abs(b - a).mean() for a, b in zip(crops, crops[1:])])


@pytest.mark.slow
@pytest.mark.timeout(150)
@pytest.mark.parametrize("codec", ["vp8", "h264"])
async def test_a_janus_subscriber_sees_the_mouth_move_and_hears_the_voice(
    parts: LiveParts, sfu: janus.Sfu, codec: str
) -> None:
    """Published over WHIP into a VideoRoom; a subscriber gets about 25 fps of the avatar, its mouth moving while
    speech plays and resting in the silence after, and the voice as sound during the speech."""
    url = await sfu.create_endpoint(codec, token="room-token")
    # Liveness off: the mouth is judged still in silence (idle motion moves it on purpose).
    session = LiveSession(parts, f"janus-{codec}", fps=FPS, liveness=LivenessSettings.off())
    publisher = WhipPublisher(
        WhipClient(url, token="room-token"),
        parts.avatar.portrait,
        fps=FPS,
        size_px=SIZE_PX,
        video_codec=codec,
        on_sent=lambda frame: session.record_sent("whip", frame),
        on_repeat=lambda: session.record_repeat("whip"),
        on_dropped=lambda: session.record_unsent("whip"),
    )
    session.add_video_output(publisher, reports_sends=True)
    subscriber = janus.JanusSubscriber(sfu.janus_http)
    loop = asyncio.get_running_loop()
    try:
        await publisher.connect()
        publisher.start()
        await asyncio.wait_for(publisher.wait_connected(), 20)
        received = await subscriber.subscribe(janus.ROOMS[codec])
        while len(received.video) < FPS:  # the subscriber's ICE, DTLS and first keyframe
            await asyncio.sleep(0.1)
        session.stats_report()
        speech_start = loop.time()
        speech = load_audio_file(SPEECH)[: int(SPEECH_S * SAMPLE_RATE_HZ)]
        await _speak(session, publisher, speech)
        speech_end = loop.time()
        await _speak(session, publisher, np.zeros(int(SILENCE_S * SAMPLE_RATE_HZ), np.float32))
        end = loop.time()
        report = session.stats_report()
    finally:
        await subscriber.close()
        await session.close()

    times = np.asarray([t for t, _ in received.video])
    in_run = (times >= speech_start) & (times <= end)
    rate = (in_run.sum() - 1) / (times[in_run][-1] - times[in_run][0])
    pictures = [f.to_ndarray(format="gray") for _, f in received.video]
    assert pictures[-1].shape == (SIZE_PX, SIZE_PX)
    mouth, background = _mouth_and_background(parts.avatar)
    speaking = [p for t, p in zip(times, pictures) if speech_start + 0.5 <= t <= speech_end]
    silent = [p for t, p in zip(times, pictures) if speech_end + SETTLE_S <= t <= end]
    floor = max(MIN_NOISE_FLOOR, 2.0 * float(np.percentile(_changes(speaking + silent, background), 90)))
    mouth_speaking, mouth_silent = _changes(speaking, mouth), _changes(silent, mouth)
    active_speaking = float((mouth_speaking > floor).mean())
    active_silent = float((mouth_silent > floor).mean())
    loud = [
        t for t, f in received.audio if speech_start <= t <= speech_end + 0.5 and np.abs(f.to_ndarray()).max() > 1000
    ]
    print(
        f"{codec}: {rate:.1f} fps at the subscriber ({report['fresh_fps']:.1f} rendered at the sender); mouth "
          f"change median {np.median(mouth_speaking):.2f} speaking, {np.median(mouth_silent):.2f} silent, above the "
          f"{floor:.3f} codec floor in {active_speaking:.0%} and {active_silent:.0%}; {len(loud)} loud voice packets"
    )  # fmt: skip
    assert rate >= 0.8 * FPS  # a margin a loaded 2-core machine keeps; bench/ measures the rate for real
    assert np.median(mouth_speaking) >= 0.3, "the mouth did not move with the speech"
    assert np.median(mouth_silent) <= 0.2 * np.median(mouth_speaking), "the mouth did not rest in the silence"
    assert active_speaking >= 0.5 and active_silent <= 0.35
    assert len(loud) >= 50  # >= 1 s of the 3 s of speech came back as sound


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_simple_whip_server_refusals_become_clear_errors(parts: LiveParts, sfu: janus.Sfu) -> None:
    """A wrong token (simple-whip-server answers 403) and an unknown endpoint (404) are refusals, not retries."""
    url = await sfu.create_endpoint("vp8", token="right")
    for target, token, status in [(url, "wrong", 403), (sfu.whip_base + "/endpoint/nosuch", None, 404)]:
        publisher = WhipPublisher(WhipClient(target, token=token), parts.avatar.portrait, fps=FPS, size_px=SIZE_PX)
        with pytest.raises(WhipError) as error:
            await publisher.connect()
        assert error.value.status == status and not error.value.retry
        await publisher.close()
