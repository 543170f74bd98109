"""WebRTC sessions through the real server: an aiortc client on loopback, speech in, video out.

The networks are small and random (conftest.py), so nothing here judges how
the face looks: the tests check pacing, timestamps, that the picture depends
on the audio at all, control messages and the voice track (the audio receive path: test_jitter.py).
"""

import asyncio
import dataclasses
import json
import time

import numpy as np
import pytest

from engine.au.liveness import LivenessSettings
from engine.avatar import Avatar
from engine.server.app import WEBRTC_SESSIONS
from engine.server.config import ServerConfig
from engine.server.context import ENGINE
from engine.server.jitter import arrival_receiver
from tests.engine.server.webrtc_client import PacedSpeechTrack, connect, running_server, sample_speech, wait_for

SPEECH_S = 3.0
SILENCE_S = 3.5
SETTLE_S = 1.5
"""Silence frames count from this long after the speech ended (CAUSE's receptive field and the lookahead)."""
MIN_NOISE_FLOOR = 0.02
"""Smallest mean change (0..255) counted as a change; VP8's slow refresh of a static picture stays below."""
OUTPUT_SIZE_PX = 256
"""Half the portrait: the client decodes every frame in these tests, and the CI machine has 2 cores."""


Region = tuple[slice, slice]


def _mouth_and_background(avatar: Avatar) -> tuple[Region, Region]:
    """Rows and columns of the mouth (lower middle of the crop) and of a background patch, in video pixels."""
    box = avatar.crop_box
    scale = OUTPUT_SIZE_PX / max(avatar.portrait.shape[:2])
    rows = slice(int((box.y0 + 0.55 * box.size) * scale), int((box.y0 + 0.9 * box.size) * scale))
    cols = slice(int((box.x0 + 0.25 * box.size) * scale), int((box.x0 + 0.75 * box.size) * scale))
    background = (slice(0, int(box.y0 * scale) - 4), slice(0, int(box.x0 * scale) - 4))
    return (rows, cols), background


def _frame_to_frame_change(pictures: list[np.ndarray], region: Region) -> list[float]:
    """Mean absolute difference (0..255) of a region between consecutive pictures."""
    crops = [p[region].astype(np.float32) for p in pictures]
    return [float(np.abs(b - a).mean()) for a, b in zip(crops, crops[1:])]


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_speech_drives_paced_video(server_config: ServerConfig) -> None:
    """Speech then silence in; video at fps with 90 kHz pts out; the mouth region changes with speech only.

    Why the difference test holds with random networks: during silence the
    log-mel input is constant, so once CAUSE's receptive field has passed the
    AUs are constant, the generator sees identical inputs and consecutive
    frames differ only by codec noise. During speech the mel changes every
    10 ms hop, so the AUs (std ~0.4 of 0..5 with these weights), and with them
    the generator's output over the face, change from frame to frame.

    The changes are small (offline ~0.5 of 255 per pixel on average; VP8 keeps
    ~0.1), so the statistic is not a mean but how often the mouth changes: the
    share of consecutive frame pairs whose mean absolute mouth difference
    exceeds a noise floor, twice the 90th percentile of the same measure on a
    background patch outside the crop (pixels the renderer never touches, so
    whatever changes there is the codec's slow refresh). Measured here: ~80 %
    of speaking pairs, ~5 % of silent ones. This shows the picture follows the
    audio; it says nothing about lip shapes.
    """
    # Liveness off: blinks, idle and head motion move the face in silence on purpose (tests/engine/au).
    config = dataclasses.replace(server_config, output_size_px=OUTPUT_SIZE_PX, liveness=LivenessSettings.off())
    async with running_server(config) as (url, app):
        context = app[ENGINE]
        speech = PacedSpeechTrack(sample_speech(SPEECH_S))
        peer = await connect(url, speech, voice=True)
        try:
            session = next(iter(app[WEBRTC_SESSIONS]))
            pc = session.peer_connection
            assert pc is not None
            audio_in = [t for t in pc.getTransceivers() if t.kind == "audio"]
            assert all(arrival_receiver(t) is not None for t in audio_in)  # audio decoded on arrival: test_jitter.py
            await wait_for(lambda: speech.speech_end_s is not None, SPEECH_S + 10, "the speech to be sent")
            assert speech.speech_end_s is not None
            await asyncio.sleep(SILENCE_S)
            end_s = time.perf_counter()
        finally:
            await peer.close()

    video = peer.video
    times = np.asarray(video.times_s)
    first_s = times[0]
    # Pacing: frames per second over the run after the first second (connection set-up excluded).
    rate = video.rate_fps(first_s + 1.0, end_s)
    # What the viewer gets: about fps frames per second (repeats fill stalls), with margins a loaded
    # 2-core machine keeps.
    assert 0.8 * config.fps <= rate <= 1.2 * config.fps, f"received {rate:.1f} fps, configured {config.fps}"
    # 90 kHz pts from the send instants: strictly increasing, and the RTP clock advances at the rate of the
    # receive times (the slope of one against the other, robust to the client's decoding jitter).
    pts_s = np.asarray(video.pts) / 90_000
    assert (np.diff(pts_s) > 0).all()
    clock_rate = float(np.polyfit(times, pts_s, 1)[0])
    print(f"RTP clock rate against receive times: {clock_rate:.4f}")
    assert abs(clock_rate - 1) <= 0.02

    mouth, background = _mouth_and_background(context.avatar)
    speaking = [p for t, p in zip(times, video.pictures) if first_s + 1.0 <= t <= speech.speech_end_s]
    silent = [p for t, p in zip(times, video.pictures) if speech.speech_end_s + SETTLE_S <= t <= end_s]
    assert len(speaking) > 25 and len(silent) > 25
    mouth_speaking = np.asarray(_frame_to_frame_change(speaking, mouth))
    mouth_silent = np.asarray(_frame_to_frame_change(silent, mouth))
    background_all = np.asarray(_frame_to_frame_change(speaking + silent, background))
    noise_floor = max(MIN_NOISE_FLOOR, 2.0 * float(np.percentile(background_all, 90)))
    active_speaking = float((mouth_speaking > noise_floor).mean())
    active_silent = float((mouth_silent > noise_floor).mean())
    print(
        f"mouth change per frame (0..255), median: {np.median(mouth_speaking):.3f} speaking, "
        f"{np.median(mouth_silent):.3f} silent; above the {noise_floor:.3f} codec floor in "
        f"{active_speaking:.0%} of speaking and {active_silent:.0%} of silent frames"
    )
    assert active_speaking >= 0.4
    assert active_silent <= 0.2
    assert np.median(mouth_speaking) > 2 * np.median(mouth_silent)

    # The stats messages on the control channel count what the client received, and server-side latency.
    stats = [m for m in peer.messages if m.get("type") == "stats"]
    assert len(stats) >= 3
    server_fps = float(np.mean([m["fps"] for m in stats[1:]]))
    assert abs(server_fps - rate) <= 0.15 * rate, f"server says {server_fps:.1f} fps, the client got {rate:.1f}"
    latency = [m["latency_ms"]["p50"] for m in stats if m["latency_ms"]["p50"] is not None]
    assert latency and all(0 < value < 200 for value in latency), latency

    # The voice comes back as 20 ms packets at real-time pace (held back to the video: test_tracks.py).
    voice_rate = (sum(first_s + 1.0 <= t <= end_s for t in peer.voice_times) - 1) / (end_s - first_s - 1.0)
    assert 40 <= voice_rate <= 60, f"voice at {voice_rate:.1f} packets/s, expected 50"


@pytest.mark.timeout(30)
async def test_control_channel_sets_expression_and_reports_errors(server_config: ServerConfig) -> None:
    """Expression messages are applied all or nothing and acknowledged; bad ones come back as errors."""
    async with running_server(server_config) as (url, app):
        peer = await connect(url, PacedSpeechTrack(sample_speech(1.0)), keep_pictures=False)
        try:
            await wait_for(lambda: peer.control.readyState == "open", 10, "the control channel to open")
            session = next(iter(app[WEBRTC_SESSIONS]))
            messages = [
                {"type": "expression", "bias": {"AU12": 2.0, "AU06": 1.5}, "gain": {"AU04": 0.0}},
                {"type": "expression", "bias": {"AU12": 9.0}},
                {"type": "expression", "bias": {"AU99": 1.0}},
                {"type": "wink"},
            ]
            for message in messages:
                peer.control.send(json.dumps(message))
            peer.control.send("{not json")
            await wait_for(lambda: len(peer.messages_of("applied", "error")) >= 5, 10, "five replies")
        finally:
            await peer.close()
    replies = peer.messages_of("applied", "error")
    assert replies[0] == {"type": "applied", "of": "expression"}
    errors = [r["error"] for r in replies[1:]]
    assert "-5..5" in errors[0] and "AU99" in errors[1] and "wink" in errors[2] and "JSON" in errors[3]
    expression = session.live.expression
    assert expression.bias[8] == 2.0 and expression.bias[4] == 1.5 and expression.gain[2] == 0.0  # AU12, AU06, AU04
