"""A live session's outgoing-frame statistics, read from the frames' traces (no stopwatches elsewhere).

Latency here is what the server can see: from the wall time the last audio
sample a frame depends on was handed to the session (after the network, the
jitter buffer and the decoder) to the wall time the frame left through its
output (for WebRTC: handed to the RTP sender; encoding follows). Packetization,
the network and the receiver's own buffers come on top; the web client adds
what the browser measures.

Each report also carries the traces of the frames it counts (``frames``), so a
peer can pair every video frame it received (by RTP pts) with the audio instant
it shows and measure end to end (``bench/e2e.py``). The wall times are this
process's ``time.perf_counter()``: comparable with a peer's only on the same
machine, where it reads the system-wide monotonic clock.
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.pipeline import FrameTrace


@dataclass
class FrameStats:
    """Accumulates one reporting interval; start a new FrameStats for the next.

    Times are ``time.perf_counter()`` seconds; reported durations are ms.
    """

    started_s: float
    frames_sent: int = 0
    fresh_frames_sent: int = 0
    frames_skipped: int = 0
    latency_ms: list[float] = field(default_factory=list)
    render_ms: list[float] = field(default_factory=list)
    wait_ms: list[float] = field(default_factory=list)
    traces: list[dict[str, float | int | None]] = field(default_factory=list)

    def frame_sent(self, trace: FrameTrace | None) -> None:
        """One frame went out: the trace of a new frame (with ``send_s``), or None for a repeated picture."""
        self.frames_sent += 1
        if trace is None:
            return
        self.fresh_frames_sent += 1
        self.traces.append(_trace_record(trace))
        if trace.send_s is not None:
            self.latency_ms.append((trace.send_s - trace.audio_arrival_s) * 1e3)
        if trace.render_start_s is not None and trace.render_end_s is not None:
            self.render_ms.append((trace.render_end_s - trace.render_start_s) * 1e3)
            self.wait_ms.append((trace.render_start_s - trace.audio_arrival_s) * 1e3)

    def frame_skipped(self) -> None:
        """A newer frame replaced one that was due before it could be sent or rendered."""
        self.frames_skipped += 1

    def report(self, now_s: float, **extra: Any) -> dict[str, Any]:
        """This interval's figures, from ``started_s`` to ``now_s``, plus the ``extra`` fields.

        Keys: interval_s; fps (all frames sent, repeats included) and fresh_fps
        (newly rendered ones), frames per second; frames_skipped; latency_ms
        {p50, p95, max}; render_ms and wait_ms {p50} (wait: audio arrival to
        render start, the batching window included). Percentiles are None when
        no fresh frame went out. frames: one record per fresh frame, in send
        order: pts (90 kHz, as sent), shown_sample and due_sample (16 kHz audio
        clock), audio_arrival_s, render_start_s, render_end_s, send_s
        (``time.perf_counter()`` seconds of the server process).
        """
        interval_s = max(now_s - self.started_s, 1e-9)
        return {
            "interval_s": round(interval_s, 3),
            "fps": self.frames_sent / interval_s,
            "fresh_fps": self.fresh_frames_sent / interval_s,
            "frames_skipped": self.frames_skipped,
            "latency_ms": _percentiles(self.latency_ms, (50, 95, 100), ("p50", "p95", "max")),
            "render_ms": _percentiles(self.render_ms, (50,), ("p50",)),
            "wait_ms": _percentiles(self.wait_ms, (50,), ("p50",)),
            "frames": self.traces,
            **extra,
        }


def _percentiles(values: list[float], qs: tuple[int, ...], names: tuple[str, ...]) -> dict[str, float | None]:
    if not values:
        return {name: None for name in names}
    points = np.percentile(np.asarray(values), qs)
    return {name: round(float(p), 2) for name, p in zip(names, points)}


def _trace_record(trace: FrameTrace) -> dict[str, float | int | None]:
    """A trace as JSON-ready values: sample counts as they are, wall times rounded to 1 us."""
    return {
        "pts": trace.send_pts,
        "shown_sample": trace.shown_sample,
        "due_sample": trace.due_sample,
        "audio_arrival_s": _microseconds(trace.audio_arrival_s),
        "render_start_s": _microseconds(trace.render_start_s),
        "render_end_s": _microseconds(trace.render_end_s),
        "send_s": _microseconds(trace.send_s),
    }


def _microseconds(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 6)
