"""From what a client recorded to latencies: pairing frames with traces, onsets, A/V offset. No I/O.

All wall times are ``time.perf_counter()`` seconds, client and server alike
(one machine); durations come out in ms.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.webrtc_peer import PACKET_SAMPLES, VideoLog, VoiceLog
from engine.pipeline import SAMPLE_RATE_HZ

VOICE_RATE_HZ = 48_000
"""The clock of the voice packets' pts (Opus)."""
MIN_MOUTH_CHANGE = 0.02
"""Smallest movement score (mean luma difference, 0..255) counted as the mouth moving, whatever the noise."""
NOISE_FACTOR = 2.0
"""A score counts as movement above this many times the 99th percentile of the scores in settled silence."""

SEGMENTS = ("audio_window", "uplink", "wait", "render", "output", "downlink")
"""The parts of a frame's latency, in order; they add up to ``latency_ms``:

- audio_window: the shown sample's packet left the client -> the packet with
  the last sample the frame needs left (mel window and lookahead);
- uplink: that packet left -> the server had it (Opus, network, jitter buffer, decode);
- wait: -> render start (AU worker, CAUSE, batching window);
- render: generator, compose (blend + paste + I420 at full resolution);
- output: I420 conversion, the video track's pacing;
- downlink: handed to the RTP sender -> decoded by the client (encode, network, decode).
"""


@dataclass(frozen=True)
class FrameTiming:
    """A received frame with its server trace; wall times in seconds.

    audio_sent_s: when the client's packet holding the shown sample left.
    due_sent_s: when the packet holding the last sample the frame needs left.
    capture_s: when the shown sample itself was "captured" (the packet's
        release time minus the rest of the packet): what a live microphone adds.
    """

    shown_sample: int
    capture_s: float
    audio_sent_s: float
    due_sent_s: float
    audio_arrival_s: float
    render_start_s: float
    render_end_s: float
    send_s: float
    video_arrival_s: float

    @property
    def latency_ms(self) -> float:
        """The shown sample left the client -> the frame was decoded by the client."""
        return (self.video_arrival_s - self.audio_sent_s) * 1e3

    @property
    def capture_latency_ms(self) -> float:
        """The shown sample was captured -> the frame was decoded (adds the packetization wait)."""
        return (self.video_arrival_s - self.capture_s) * 1e3

    def segments_ms(self) -> dict[str, float]:
        """``latency_ms`` split at each handover (see ``SEGMENTS``)."""
        points = (
            self.audio_sent_s,
            self.due_sent_s,
            self.audio_arrival_s,
            self.render_start_s,
            self.render_end_s,
            self.send_s,
            self.video_arrival_s,
        )
        return {name: (b - a) * 1e3 for name, a, b in zip(SEGMENTS, points, points[1:])}


def pair_frames(traces: Sequence[dict[str, Any]], video: VideoLog, packet_sent_s: Sequence[float]) -> list[FrameTiming]:
    """The frames the client received whose trace the server sent, in send order.

    A trace pairs with the received frame of the same pts; traces of frames
    never received, or lacking a time, are left out.
    """
    arrivals: dict[int, float] = {}
    for pts, arrival_s in zip(video.pts, video.arrival_s):
        arrivals.setdefault(pts, arrival_s)
    packet_s = PACKET_SAMPLES / SAMPLE_RATE_HZ
    timings = []
    for trace in traces:
        video_arrival_s = arrivals.get(trace["pts"]) if trace.get("pts") is not None else None
        shown, due = trace["shown_sample"], trace["due_sample"]
        last_packet = (due - 1) // PACKET_SAMPLES
        arrival_s, start_s, end_s, send_s = (
            trace[k] for k in ("audio_arrival_s", "render_start_s", "render_end_s", "send_s")
        )
        if video_arrival_s is None or last_packet >= len(packet_sent_s) or None in (start_s, end_s, send_s):
            continue
        packet = shown // PACKET_SAMPLES
        sent_s = packet_sent_s[packet]
        capture_s = sent_s - packet_s + (shown % PACKET_SAMPLES + 1) / SAMPLE_RATE_HZ
        timings.append(
            FrameTiming(
                shown, capture_s, sent_s, packet_sent_s[last_packet], arrival_s, start_s, end_s, send_s, video_arrival_s
            )
        )
    return timings


@dataclass(frozen=True)
class Onsets:
    """Black-box reaction to speech: per onset, ms from its first packet leaving to the first moving mouth.

    latencies_ms: one per onset; None where the mouth did not move within the limit.
    threshold: the movement score (luma levels, 0..255) that counted as moving.
    noise_p99: the 99th percentile of the score in settled silence (what the threshold clears).
    """

    latencies_ms: list[float | None]
    threshold: float
    noise_p99: float


def movement_scores(video: VideoLog) -> np.ndarray:
    """Per frame: how much the mouth changed since the previous frame beyond the background's change.

    Mean absolute luma difference (0..255) of the mouth blocks minus that of
    the background blocks, so that the codec re-quantizing the whole picture
    (its quality ramps up over the first seconds) does not count as movement.
    0 for the first frame.
    """
    scores = np.zeros(len(video.arrival_s))
    for i in range(1, scores.size):
        mouth = float(np.abs(video.mouth[i] - video.mouth[i - 1]).mean())
        background = float(np.abs(video.background[i] - video.background[i - 1]).mean())
        scores[i] = mouth - background
    return scores


def onset_latencies(
    onset_sent_s: Sequence[float], settled_s: Sequence[tuple[float, float]], video: VideoLog, *, limit_s: float
) -> Onsets:
    """For each onset (when its first speech packet left), the first later frame whose mouth moved.

    ``settled_s``: (start, end) wall times of silence after CAUSE's receptive
    field has passed: the mouth is still then, and the scores of frames
    arriving in these spans are the noise. A frame moves when its score
    (:func:`movement_scores`) is above ``NOISE_FACTOR`` times the noise's
    99th percentile, and at least ``MIN_MOUTH_CHANGE``.
    """
    arrival = np.asarray(video.arrival_s)
    scores = movement_scores(video)
    settled = np.zeros(arrival.shape, bool)
    for start, end in settled_s:
        settled |= (arrival >= start) & (arrival < end)
    noise_p99 = float(np.percentile(scores[settled], 99)) if settled.any() else 0.0
    threshold = max(MIN_MOUTH_CHANGE, NOISE_FACTOR * noise_p99)
    latencies: list[float | None] = []
    for onset_s in onset_sent_s:
        moved = np.flatnonzero((arrival > onset_s) & (arrival <= onset_s + limit_s) & (scores > threshold))
        latencies.append(float((arrival[moved[0]] - onset_s) * 1e3) if moved.size else None)
    return Onsets(latencies, threshold, noise_p99)


def av_offsets_ms(timings: Sequence[FrameTiming], voice: VoiceLog) -> list[tuple[float, float]]:
    """Per frame, (video arrival, ms the picture of an instant arrived after the voice of that instant).

    Voice packets are placed on the server's audio clock by their pts (the
    first packet the client receives starts at sample 0). Positive: the lips
    come after the voice.
    """
    if not voice.pts:
        return []
    starts = np.asarray(voice.pts, dtype=np.int64) * SAMPLE_RATE_HZ // VOICE_RATE_HZ
    order = np.argsort(starts, kind="stable")
    starts, arrivals = starts[order], np.asarray(voice.arrival_s)[order]
    offsets = []
    for timing in timings:
        i = int(np.searchsorted(starts, timing.shown_sample, side="right")) - 1
        if i < 0 or timing.shown_sample >= starts[i] + PACKET_SAMPLES:
            continue  # the packet with this instant never arrived
        offsets.append((timing.video_arrival_s, (timing.video_arrival_s - arrivals[i]) * 1e3))
    return offsets
