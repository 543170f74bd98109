"""``GET /metrics``: Prometheus text with per-stage latency from traces, sessions and frame counters."""

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine.pipeline import FrameTrace
from engine.scheduler import SchedulerStats
from engine.server.config import ServerConfig
from engine.server.context import ENGINE
from engine.server.metrics import ServerMetrics
from tests.engine.server.webrtc_client import PacedSpeechTrack, connect, running_server, sample_speech, wait_for

STAGES = {"wait", "render", "output", "server"}


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value, parsed by prometheus_client's own parser (raises on bad text)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_frames_are_counted_and_their_stages_observed() -> None:
    stats = SchedulerStats(frames_rendered=5, frames_dropped=2, frames_expired=1, frames_late=1, batches=4)
    metrics = ServerMetrics(scheduler_stats=lambda: stats, active_sessions=lambda: {"webrtc-1": "webrtc"})
    metrics.frame_sent(
        "webrtc", FrameTrace(0, 720, audio_arrival_s=10.0, render_start_s=10.004, render_end_s=10.016, send_s=10.020)
    )
    metrics.frame_sent("webrtc", None)
    metrics.frame_sent("ws", FrameTrace(640, 1360, audio_arrival_s=11.0, send_s=11.002))
    metrics.frame_unsent("webrtc")
    samples = _samples(metrics.exposition().decode())
    assert samples["avatar_sessions", (("kind", "webrtc"),)] == 1
    assert samples["avatar_sessions", (("kind", "ws"),)] == 0
    assert samples["avatar_frames_sent_total", (("kind", "rendered"), ("transport", "webrtc"))] == 1
    assert samples["avatar_frames_sent_total", (("kind", "repeat"), ("transport", "webrtc"))] == 1
    assert samples["avatar_frames_sent_total", (("kind", "aus"), ("transport", "ws"))] == 1
    assert samples["avatar_frames_dropped_total", (("reason", "superseded"),)] == 2
    assert samples["avatar_frames_dropped_total", (("reason", "expired"),)] == 1
    assert samples["avatar_frames_dropped_total", (("reason", "unsent"),)] == 1
    assert samples["avatar_frames_rendered_total", ()] == 5
    assert samples["avatar_frames_late_total", ()] == 1
    count = {stage: samples["avatar_frame_stage_seconds_count", (("stage", stage),)] for stage in STAGES}
    assert count == {"wait": 1, "render": 1, "output": 1, "server": 2}
    assert samples["avatar_frame_stage_seconds_sum", (("stage", "render"),)] == pytest.approx(0.012)
    assert samples["avatar_frame_stage_seconds_bucket", (("le", "0.015"), ("stage", "render"))] == 1
    assert samples["avatar_frame_stage_seconds_bucket", (("le", "0.01"), ("stage", "render"))] == 0
    assert samples["process_resident_memory_bytes", ()] > 0


@pytest.mark.slow
@pytest.mark.timeout(40)
async def test_metrics_endpoint_after_a_webrtc_session(server_config: ServerConfig) -> None:
    async with running_server(server_config) as (url, app), aiohttp.ClientSession() as http:
        peer = await connect(url, PacedSpeechTrack(sample_speech(2.0)), keep_pictures=False)
        try:
            await wait_for(lambda: len(peer.video.times_s) > 40, 20, "40 frames")
            async with http.get(f"{url}/metrics") as response:
                assert response.status == 200
                assert response.content_type == "text/plain"
                during = _samples(await response.text())
        finally:
            await peer.close()
        await wait_for(lambda: not app[ENGINE].slots.active, 10, "the session to end")
        async with http.get(f"{url}/metrics") as response:
            after = _samples(await response.text())
    assert during["avatar_sessions", (("kind", "webrtc"),)] == 1
    assert after["avatar_sessions", (("kind", "webrtc"),)] == 0
    rendered = after["avatar_frames_sent_total", (("kind", "rendered"), ("transport", "webrtc"))]
    assert rendered > 10
    assert after["avatar_frames_rendered_total", ()] >= rendered
    for stage in STAGES:
        assert after["avatar_frame_stage_seconds_count", (("stage", stage),)] == rendered
        assert after["avatar_frame_stage_seconds_sum", (("stage", stage),)] > 0
    for reason in ("superseded", "expired", "unsent"):
        assert ("avatar_frames_dropped_total", (("reason", reason),)) in after
    assert after["process_resident_memory_bytes", ()] > 0
