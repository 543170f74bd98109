"""``e2e``: latency from an audio sample leaving the client to the video frame showing it arriving back.

The server is ``avatar serve`` in its own process (``bench/server_process.py``);
this process is the client (``bench/webrtc_peer.py``): aiortc on loopback,
speech at real-time pace in 20 ms packets, video back. Speech comes in
phrases (``--phrase`` seconds of the built-in sample) after pauses
(``--silence`` seconds of digital silence), for ``--seconds`` in all.

Per received frame: latency = arrival time (decoded) minus the wall time the
packet holding the audio sample the frame shows left the client. Frames are
paired with samples through the server's traces, which come over the
"control" data channel in the ~1 s stats messages and carry each frame's RTP
pts (``engine/live/stats.py``). The latency is split at each handover
(``bench/latency.py``: ``SEGMENTS``). "capture" latency adds the wait of the
sample inside its 20 ms packet, as a live microphone has it.

Black box, independent of the traces: at each pause -> speech onset, the time
from the first speech packet leaving to the first returned frame whose mouth
region changes (beyond the background's change) by more than twice what it
does in settled silence (``bench/latency.py``: ``onset_latencies``).
"""

import argparse
import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.latency import SEGMENTS, Onsets, onset_latencies, pair_frames
from bench.models import add_model_arguments, generator_source, model_setup
from bench.plots import new_figure, save
from bench.report import PERCENTILE_HEADERS, Report, Target, percentile_cells, percentiles
from bench.server_process import ServerProcess, running_server, server_arguments
from bench.speech import paused_speech
from bench.targets import LATENCY_P50_MS, LATENCY_P95_MS
from bench.webrtc_peer import PACKET_SAMPLES, Peer, record, watched_regions
from engine.avatar import load_avatar
from engine.backends.model_files import cache_dir
from engine.pipeline import SAMPLE_RATE_HZ

NAME = "e2e"
SUMMARY = "audio-sample-to-frame latency through real WebRTC on localhost (aiortc client, server in its own process)"
SETTLE_S = 1.0
"""Silence after speech before the mouth is still, s: CAUSE's receptive field (0.61 s) and mel window, rounded up."""
ONSET_LIMIT_S = 1.5
"""An onset whose mouth has not moved this long after the speech left counts as missed."""


def add_arguments(parser: argparse.ArgumentParser, *, smoke: bool) -> None:
    add_speech_arguments(parser, seconds=4.0 if smoke else 60.0)
    add_server_arguments(parser, smoke=smoke)


def add_speech_arguments(parser: argparse.ArgumentParser, *, seconds: float) -> None:
    """How much paused speech is streamed, and its phrases and pauses (shared with ``browser``)."""
    parser.add_argument(
        "--seconds", type=float, default=seconds, help="seconds of audio streamed (default: %(default)s)"
    )
    parser.add_argument("--silence", type=float, default=2.0, help="pause before each phrase, s (default: 2.0)")
    parser.add_argument("--phrase", type=float, default=3.0, help="each phrase of speech, s (default: 3.0)")


def stream_config(args: argparse.Namespace) -> dict[str, Any]:
    """The speech and video settings of a run, as its report records them (shared with ``browser``)."""
    return {
        "seconds": args.seconds,
        "silence_s": args.silence,
        "phrase_s": args.phrase,
        "size_px": args.size,
        "fps": args.fps,
    }


def add_server_arguments(parser: argparse.ArgumentParser, *, smoke: bool) -> None:
    """Video size, frame rate and the models of the server under test (shared with ``drift``)."""
    parser.add_argument("--size", type=int, default=256 if smoke else 512, help="video size, px (default: %(default)s)")
    parser.add_argument("--fps", type=int, default=25, help="video frame rate (default: 25)")
    add_model_arguments(parser, default_width=8 if smoke else None)


def run(args: argparse.Namespace) -> Report:
    if args.silence < SETTLE_S + 0.5:
        raise ValueError(f"--silence must be at least {SETTLE_S + 0.5:g} s for the mouth to settle before an onset")
    speech = paused_speech(args.seconds, silence_s=args.silence, phrase_s=args.phrase)
    peer, setup = stream_to_server(args, speech.audio, voice=False)
    timings = pair_frames(peer.traces, peer.video, peer.microphone.sent_s)
    if not timings:
        raise RuntimeError("no received frame could be paired with a server trace")
    onsets = _onsets(peer, speech.onsets, speech.silence_samples)
    latency = percentiles([t.latency_ms for t in timings])
    capture = percentiles([t.capture_latency_ms for t in timings])
    segments = {name: percentiles([t.segments_ms()[name] for t in timings]) for name in SEGMENTS}
    onset = percentiles([v for v in onsets.latencies_ms if v is not None])
    results = {
        "latency_ms": latency,
        "capture_latency_ms": capture,
        "segments_ms": segments,
        "onset_latency_ms": onset,
        "onsets": {
            "count": len(onsets.latencies_ms),
            "missed": onsets.latencies_ms.count(None),
            "latencies_ms": onsets.latencies_ms,
            "threshold": onsets.threshold,
            "noise_p99": onsets.noise_p99,
        },
        "frames_received": len(peer.video.pts),
        "traces_received": len(peer.traces),
        "frames_paired": len(timings),
        "latency_series_ms": [round(t.latency_ms, 2) for t in timings],
    }
    rows = [
        ["latency (sample left client -> frame decoded)", *percentile_cells(latency)],
        ["capture latency (+ wait inside the 20 ms packet)", *percentile_cells(capture)],
        *[[f"  {name}", *percentile_cells(segments[name])] for name in SEGMENTS],
        [f"onset -> mouth moves ({onset['n']} of {len(onsets.latencies_ms)} onsets)", *percentile_cells(onset)],
    ]
    return Report(
        scenario=NAME,
        smoke=args.smoke,
        config={**stream_config(args), "client": "aiortc, separate process from the server"},
        setup=setup,
        results=results,
        headers=PERCENTILE_HEADERS,
        rows=rows,
        targets=latency_targets(latency),
        plot=lambda path: _plot(
            [t.latency_ms for t in timings], [t.capture_latency_ms for t in timings], segments, onsets, path
        ),
    )


def stream_to_server(
    args: argparse.Namespace,
    audio: np.ndarray,
    *,
    voice: bool,
    on_tick: Callable[[ServerProcess], None] | None = None,
    tick_s: float = 1.0,
) -> tuple[Peer, dict[str, Any]]:
    """Start the server the arguments describe, stream ``audio`` to it, hang up, stop it; the peer's records.

    ``on_tick(server)`` is called about every ``tick_s`` while streaming.
    """
    generator = generator_source(args.width, cache_dir() / "bench")
    setup = model_setup(args.backend, generator, precision=args.precision, threads=args.threads, streams=args.streams)
    regions = watched_regions(load_avatar(), args.size)
    arguments = server_arguments(setup, generator, size_px=args.size, fps=args.fps, max_sessions=1)
    print(f"{args.scenario}: starting avatar serve {' '.join(arguments)} ...", flush=True)
    with running_server(arguments) as server:
        print(
            f"{args.scenario}: streaming {audio.size / SAMPLE_RATE_HZ:g} s of audio to {server.base_url} ...",
            flush=True,
        )
        tick = None if on_tick is None else (lambda: on_tick(server))
        peer = asyncio.run(record(server.base_url, audio, regions=regions, voice=voice, on_tick=tick, tick_s=tick_s))
    return peer, setup.as_dict()


def latency_targets(latency: dict[str, Any]) -> list[Target]:
    """The issue's latency targets judged on ``latency`` (percentiles, ms)."""
    return [
        Target("e2e latency p50", f"<= {LATENCY_P50_MS:g} ms", latency["p50"], latency["p50"] <= LATENCY_P50_MS),
        Target("e2e latency p95", f"<= {LATENCY_P95_MS:g} ms", latency["p95"], latency["p95"] <= LATENCY_P95_MS),
    ]


def _onsets(peer: Peer, onset_samples: list[int], silence_samples: int) -> Onsets:
    """Onset and settled-silence wall times from the packets' send times, then the black-box measure."""
    sent = peer.microphone.sent_s
    settle = int(SETTLE_S * SAMPLE_RATE_HZ)
    onset_s, settled_s = [], []
    for onset in onset_samples:
        if onset // PACKET_SAMPLES >= len(sent):
            continue
        onset_s.append(sent[onset // PACKET_SAMPLES])
        settled_from = onset - silence_samples + settle
        settled_s.append((sent[settled_from // PACKET_SAMPLES], onset_s[-1]))
    return onset_latencies(onset_s, settled_s, peer.video, limit_s=ONSET_LIMIT_S)


def _plot(
    latency_ms: list[float], capture_ms: list[float], segments: dict[str, dict[str, Any]], onsets: Onsets, path: Path
) -> None:
    """Left: CDFs of the latencies, with the targets; right: the p50 of each segment, stacked."""
    figure = new_figure(11, 4.5)
    cdf, parts = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    series = [
        ("sample left client -> frame decoded", latency_ms),
        ("sample captured -> frame decoded", capture_ms),
        ("onset -> mouth moves (black box)", [v for v in onsets.latencies_ms if v is not None]),
    ]
    for label, values in series:
        if values:
            ordered = np.sort(values)
            cdf.step(ordered, np.arange(1, ordered.size + 1) / ordered.size, where="post", label=label)
    for target, style in ((LATENCY_P50_MS, ":"), (LATENCY_P95_MS, "--")):
        cdf.axvline(target, color="black", linestyle=style, linewidth=1)
    right_ms = max(2 * LATENCY_P95_MS, 1.5 * float(np.percentile(latency_ms + capture_ms, 99)))
    cdf.set_xlim(0, right_ms)  # a late onset beyond it is in the JSON, not worth squashing the CDF for
    cdf.axhline(0.5, color="grey", linewidth=0.5)
    cdf.axhline(0.95, color="grey", linewidth=0.5)
    cdf.set_xlabel("latency, ms (targets: p50 100, p95 150)")
    cdf.set_ylabel("fraction of frames")
    cdf.legend(fontsize=8, loc="lower right")
    cdf.set_title("End-to-end latency, CDF")
    bottom = 0.0
    for i, name in enumerate(SEGMENTS):
        value = max(segments[name]["p50"] or 0.0, 0.0)
        parts.bar(0, value, bottom=bottom, color=f"C{i}", label=f"{name} {value:.1f} ms")
        bottom += value
    parts.set_xticks([0], ["p50 of each segment"])
    parts.set_xlim(-1, 2)
    parts.set_ylabel("ms")
    parts.legend(fontsize=8, loc="upper right")
    parts.set_title("Where the time goes")
    save(figure, path)
