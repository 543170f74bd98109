"""FrameStats: a session's stats report, with the traces of the frames it counts."""

from engine.live.stats import FrameStats
from engine.pipeline import FrameTrace


def _trace(index: int, send_pts: int | None) -> FrameTrace:
    return FrameTrace(
        index * 640,
        index * 640 + 720,
        audio_arrival_s=1.0 + index * 0.04,
        render_start_s=1.005,
        render_end_s=1.015,
        send_s=1.02 + index * 0.04,
        send_pts=send_pts,
    )


def test_report_carries_one_trace_per_fresh_frame() -> None:
    stats = FrameStats(started_s=0.0)
    stats.frame_sent(_trace(0, send_pts=3600))
    stats.frame_sent(None)
    stats.frame_sent(_trace(1, send_pts=7200))
    report = stats.report(2.0)
    assert report["fps"] == 1.5 and report["fresh_fps"] == 1.0
    assert [f["pts"] for f in report["frames"]] == [3600, 7200]
    first = report["frames"][0]
    assert first == {
        "pts": 3600,
        "shown_sample": 0,
        "due_sample": 720,
        "audio_arrival_s": 1.0,
        "render_start_s": 1.005,
        "render_end_s": 1.015,
        "send_s": 1.02,
    }
