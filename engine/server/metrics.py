"""The server's Prometheus metrics, served as text at ``GET /metrics``.

Latency comes from the frames' traces (no stopwatches here): each frame that
goes out is observed once, stage by stage, in ``avatar_frame_stage_seconds``:

- ``wait``: its last audio sample arrived -> render start (the AU worker's
  queue, CAUSE and the batching window);
- ``render``: render start -> end (generator, blend, paste; one batch);
- ``output``: render end -> handed to the transport (I420 conversion or JPEG,
  and the video track's pacing);
- ``server``: its last audio sample arrived -> handed to the transport (the
  whole server-side latency; encoding and the network follow).

Counters the scheduler keeps already (``SchedulerStats``) and the session count
are read when scraped, not copied. Process metrics (``process_resident_memory_bytes``,
CPU seconds, open files) come from prometheus_client's process collector.

One registry per server (never the library's global one), so that several
apps in one process (the tests) do not collide.
"""

from collections import Counter as Tally
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from engine.pipeline import FrameTrace
from engine.scheduler import SchedulerStats

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The Content-Type of the exposition: Prometheus text format 0.0.4."""

STAGE_BUCKETS_S = (
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.04,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.5,
    1.0,
)
"""Histogram bucket bounds, seconds: fine around the stage budgets (a few ms to 40 ms) and the 100-150 ms targets."""

SESSION_KINDS = ("webrtc", "ws")
"""Session kinds always exported (0 when none is live), as ``SessionSlots`` names them."""


class ServerMetrics(Collector):
    """Counts what the sessions send and renders the exposition.

    Call :meth:`frame_sent` and :meth:`frame_unsent` from the event loop; the
    scheduler's counters and the live sessions are read through the two
    callables at each scrape (:meth:`collect`).
    """

    def __init__(
        self,
        *,
        scheduler_stats: Callable[[], SchedulerStats],
        active_sessions: Callable[[], Mapping[str, str]],
        refusals: Callable[[], Mapping[str, int]] = dict,
    ) -> None:
        """
        Args:
            scheduler_stats: the render scheduler's counters now.
            active_sessions: session id -> kind ("webrtc", "ws") of the live sessions.
            refusals: clients refused so far, by kind (``engine.server.context.Gate.refusals``).
        """
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self._stages = Histogram(
            "avatar_frame_stage_seconds",
            "Per-frame time of each server stage, from the frame's trace, seconds",
            ["stage"],
            buckets=STAGE_BUCKETS_S,
            registry=self.registry,
        )
        self._sent: Tally[tuple[str, str]] = Tally()
        self._unsent: Tally[str] = Tally()
        self._scheduler_stats = scheduler_stats
        self._active_sessions = active_sessions
        self._refusals = refusals
        self.registry.register(self)

    def frame_sent(self, transport: str, trace: FrameTrace | None) -> None:
        """A frame went out on ``transport`` ("webrtc", "ws"): its trace, or None for a repeated picture."""
        if trace is None:
            self._sent[transport, "repeat"] += 1
            return
        rendered = trace.render_start_s is not None and trace.render_end_s is not None
        self._sent[transport, "rendered" if rendered else "aus"] += 1
        if trace.send_s is None:
            return
        self._stages.labels("server").observe(trace.send_s - trace.audio_arrival_s)
        if rendered:
            assert trace.render_start_s is not None and trace.render_end_s is not None
            self._stages.labels("wait").observe(trace.render_start_s - trace.audio_arrival_s)
            self._stages.labels("render").observe(trace.render_end_s - trace.render_start_s)
            self._stages.labels("output").observe(trace.send_s - trace.render_end_s)

    def frame_unsent(self, transport: str) -> None:
        """A rendered frame was replaced by a newer one before it could go out on ``transport``."""
        self._unsent[transport] += 1

    def exposition(self) -> bytes:
        """Every metric in the Prometheus text format (``CONTENT_TYPE``)."""
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Metric]:
        """The engine's metrics now (prometheus_client calls this at each scrape)."""
        kinds = Tally(self._active_sessions().values())
        sessions = GaugeMetricFamily("avatar_sessions", "Live sessions, by kind", labels=["kind"])
        for kind in sorted(set(SESSION_KINDS) | set(kinds)):
            sessions.add_metric([kind], kinds[kind])
        yield sessions

        sent = CounterMetricFamily(
            "avatar_frames_sent",
            "Frames handed to a transport: rendered, repeated picture (WebRTC pacing) or AU record only",
            labels=["transport", "kind"],
        )
        for (transport, kind), count in sorted(self._sent.items()):
            sent.add_metric([transport, kind], count)
        yield sent

        refused = CounterMetricFamily(
            "avatar_refused",
            "Connections, requests and messages refused, by kind (engine/server/limits.py)",
            labels=["kind"],
        )
        for kind, count in sorted(self._refusals().items()):
            refused.add_metric([kind], count)
        yield refused

        stats = self._scheduler_stats()
        yield CounterMetricFamily(
            "avatar_frames_rendered", "Frames the render scheduler rendered", value=stats.frames_rendered
        )
        yield CounterMetricFamily(
            "avatar_frames_late", "Rendered frames whose batch ended after their deadline", value=stats.frames_late
        )
        dropped = CounterMetricFamily(
            "avatar_frames_dropped",
            "Frames not shown: superseded by a newer frame of the session before rendering, expired "
            "(too late to render), or unsent (rendered, replaced before it could go out)",
            labels=["reason"],
        )
        dropped.add_metric(["superseded"], stats.frames_dropped)
        dropped.add_metric(["expired"], stats.frames_expired)
        dropped.add_metric(["unsent"], sum(self._unsent.values()))
        yield dropped
        batches = CounterMetricFamily("avatar_render_batches", "Generator calls, by result", labels=["result"])
        batches.add_metric(["ok"], stats.batches)
        batches.add_metric(["failed"], stats.batches_failed)
        yield batches
