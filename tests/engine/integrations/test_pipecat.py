"""AvatarVideoService under Pipecat's own processor harness (``pipecat.tests.utils.run_test``): frames out,
timing, the audio re-timed to the frames, interruption, the idle face. Real pipeline, small random networks."""

from collections.abc import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio

pytest.importorskip("pipecat", reason="the pipecat extra is not installed: pip install 'avatar-engine[pipecat]'")

from pipecat.frames.frames import InterruptionFrame, OutputImageRawFrame, TTSAudioRawFrame  # noqa: E402
from pipecat.tests.utils import SleepFrame, run_test  # noqa: E402

from bench.speech import looped_speech  # noqa: E402
from engine.integrations.pipecat import SHOWN_SAMPLE_KEY, START_SAMPLE_KEY, AvatarVideoService  # noqa: E402
from engine.live import LiveParts  # noqa: E402
from engine.live.build import PartsSettings, build_parts, running_parts  # noqa: E402
from engine.server.config import ServerConfig  # noqa: E402

FPS = 25
RATE_HZ = 24_000
"""Pipecat's default output rate (what its TTS services produce)."""
TTS_FRAME_MS = 40


@pytest_asyncio.fixture
async def parts(server_config: ServerConfig) -> AsyncIterator[LiveParts]:
    settings = PartsSettings(
        generator_path=server_config.generator_path, cause_path=server_config.cause_path, threads=1, serving=False
    )
    async with running_parts(build_parts(settings).parts) as running:
        yield running


def tts_frames(seconds: float) -> list[TTSAudioRawFrame]:
    """Speech as a TTS service delivers it: s16 mono at 24 kHz, 40 ms a frame, all at once (faster than real time)."""
    speech = np.interp(np.arange(int(seconds * RATE_HZ)) * 16_000 / RATE_HZ, np.arange(int(seconds * 16_000) + 1),
                       looped_speech(seconds + 0.001)[: int(seconds * 16_000) + 1])  # fmt: skip
    pcm = (np.clip(speech, -1, 1) * 32767).astype("<i2").tobytes()
    step = RATE_HZ * TTS_FRAME_MS // 1000 * 2
    return [
        TTSAudioRawFrame(audio=pcm[i : i + step], sample_rate=RATE_HZ, num_channels=1) for i in range(0, len(pcm), step)
    ]


def _audio_bytes(frames) -> int:
    return sum(len(f.audio) for f in frames if isinstance(f, TTSAudioRawFrame))


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_speech_comes_out_as_frames_with_the_audio_retimed_to_them(parts: LiveParts) -> None:
    service = AvatarVideoService(parts, fps=FPS)
    sent = tts_frames(2.0)
    down, _ = await run_test(service, frames_to_send=[SleepFrame(0.3), *sent, SleepFrame(3.0)])
    images = [f for f in down if isinstance(f, OutputImageRawFrame)]
    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert images[0].format == "RGB"
    assert len(images[0].image) == images[0].size[0] * images[0].size[1] * 3
    # Up to fps frames a second for the ~3.3 s run (the TTS frames arrive at once and play during the sleep),
    # idle face before and after the speech included; a loaded 2-core machine renders fewer (41 seen at load 6),
    # never more.
    assert 0.3 * FPS * 3.3 <= len(images) <= 1.1 * FPS * 3.6, len(images)
    # Every byte of speech comes back, in order, cut into 20 ms frames.
    assert _audio_bytes(audio) == _audio_bytes(sent)
    assert b"".join(f.audio for f in audio) == b"".join(f.audio for f in sent)
    # Re-timed: each audio frame follows the image showing its start, never earlier; no drift: the gap between
    # an audio frame's start and the instant the image before it shows stays within one frame interval.
    shown = None
    gaps = []
    for frame in down:
        if isinstance(frame, OutputImageRawFrame):
            shown = frame.metadata[SHOWN_SAMPLE_KEY]
        elif isinstance(frame, TTSAudioRawFrame):
            assert shown is not None, "audio came before any frame showing it"
            gaps.append(shown - frame.metadata[START_SAMPLE_KEY])
    gaps_ms = np.asarray(gaps) / 16.0
    print(f"first frame {service.first_frame_latency_s * 1e3:.0f} ms after the first TTS audio; "
          f"audio start -> shown instant: {gaps_ms.min():.0f}..{gaps_ms.max():.0f} ms")  # fmt: skip
    assert gaps_ms.min() >= 0 and gaps_ms.max() <= 1000 / FPS + 20
    assert service.first_frame_latency_s is not None and service.first_frame_latency_s <= 0.4


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_an_interruption_drops_the_buffered_speech_and_the_face_goes_idle(parts: LiveParts) -> None:
    service = AvatarVideoService(parts, fps=FPS)
    sent = tts_frames(3.0)
    down, _ = await run_test(service, frames_to_send=[*sent, SleepFrame(0.6), InterruptionFrame(), SleepFrame(1.2)])
    cut = next(i for i, f in enumerate(down) if isinstance(f, InterruptionFrame))
    before, after = down[:cut], down[cut + 1 :]
    spoken_s = _audio_bytes(down) / (2 * RATE_HZ)
    assert 0.3 <= spoken_s <= 1.2, f"{spoken_s:.2f} s of the 3 s spoken; the rest should have been dropped"
    assert _audio_bytes(after) <= 2 * RATE_HZ * 0.1  # at most what was already fed when it came
    assert sum(isinstance(f, OutputImageRawFrame) for f in before) >= 10
    assert sum(isinstance(f, OutputImageRawFrame) for f in after) >= 0.5 * FPS * 1.2  # the idle face goes on


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_without_speech_the_idle_face_keeps_the_frame_rate(parts: LiveParts) -> None:
    down, _ = await run_test(AvatarVideoService(parts, fps=FPS), frames_to_send=[SleepFrame(2.0)])
    images = [f for f in down if isinstance(f, OutputImageRawFrame)]
    assert 0.5 * FPS * 2 <= len(images) <= 1.1 * FPS * 2.2
    assert not any(isinstance(f, TTSAudioRawFrame) for f in down)
