"""Pairing received frames with server traces, onsets and A/V offset, on made-up timelines."""

import numpy as np
import pytest

from bench.latency import av_offsets_ms, onset_latencies, pair_frames
from bench.webrtc_peer import VideoLog, VoiceLog

PACKET_S = 0.02


def _trace(pts: int, shown: int, arrival_s: float) -> dict[str, float | int]:
    return {
        "pts": pts,
        "shown_sample": shown,
        "due_sample": shown + 720,
        "audio_arrival_s": arrival_s,
        "render_start_s": arrival_s + 0.004,
        "render_end_s": arrival_s + 0.014,
        "send_s": arrival_s + 0.016,
    }


def test_pair_frames_measures_from_the_packet_of_the_shown_sample() -> None:
    sent = [100.0 + (k + 1) * PACKET_S for k in range(20)]  # packet k left when its last sample was captured
    video = VideoLog(arrival_s=[100.2, 100.25, 100.3], pts=[0, 3600, 7200])
    traces = [_trace(3600, 640, 100.17), _trace(7200, 1280, 100.21), _trace(99_999, 1920, 100.25)]
    timings = pair_frames(traces, video, sent)
    assert [t.shown_sample for t in timings] == [640, 1280]  # the third was never received
    first = timings[0]
    assert first.audio_sent_s == sent[2] and first.due_sent_s == sent[(640 + 720 - 1) // 320]
    assert first.latency_ms == pytest.approx((100.25 - sent[2]) * 1e3)
    assert first.capture_latency_ms == pytest.approx(first.latency_ms + (PACKET_S - 1 / 16000) * 1e3)
    assert sum(first.segments_ms().values()) == pytest.approx(first.latency_ms)


def _video(arrival_s: list[float], moving: set[int]) -> VideoLog:
    """Frames whose mouth block jumps by 10 levels at the given indices; background noise everywhere."""
    rng = np.random.default_rng(0)
    mouth, level = [], 100.0
    for i in range(len(arrival_s)):
        level += 10.0 if i in moving else 0.0
        mouth.append(np.full((4, 4), level, np.float32) + rng.normal(0, 0.01, (4, 4)).astype(np.float32))
    background = [np.full((4, 4), 50, np.float32) + rng.normal(0, 0.01, (4, 4)).astype(np.float32) for _ in arrival_s]
    return VideoLog(arrival_s=arrival_s, pts=list(range(len(arrival_s))), mouth=mouth, background=background)


def test_onsets_find_the_first_moving_mouth_after_each_onset() -> None:
    arrival = [i * 0.04 for i in range(200)]  # 8 s at 25 fps
    video = _video(arrival, moving={10, 60, 130})  # 10: before the first onset, in the open
    onsets = onset_latencies([2.0, 5.0, 7.5], [(1.0, 2.0), (4.0, 5.0), (6.5, 7.5)], video, limit_s=1.0)
    assert onsets.latencies_ms[0] == pytest.approx(400.0)  # frame 60 at 2.4 s
    assert onsets.latencies_ms[1] == pytest.approx(200.0)  # frame 130 at 5.2 s
    assert onsets.latencies_ms[2] is None  # nothing moved within 1 s of 7.5 s
    assert 0 < onsets.noise_p99 < onsets.threshold < 10


def test_av_offset_pairs_each_frame_with_the_voice_of_its_instant() -> None:
    sent = [100.0 + (k + 1) * PACKET_S for k in range(20)]
    video = VideoLog(arrival_s=[100.3, 100.34], pts=[0, 3600])
    timings = pair_frames([_trace(0, 640, 100.2), _trace(3600, 1280, 100.24)], video, sent)
    voice = VoiceLog(arrival_s=[100.28 + 0.02 * k for k in range(6)], pts=[960 * k for k in range(6)])
    offsets = av_offsets_ms(timings, voice)
    # sample 640 is in voice packet 2 (arrived 100.32), sample 1280 in packet 4 (100.36)
    assert [o for _, o in offsets] == pytest.approx([-20.0, -20.0])
    assert av_offsets_ms(timings, VoiceLog()) == []
