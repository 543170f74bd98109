"""``drift``: a long session (10 minutes by default): does latency, lip sync or memory grow?

The same client and server processes as ``e2e`` (``bench/e2e.py``), continuous
speech (the sample looped), with the voice track on so that A/V offset can be
measured where a viewer meets it: per frame, its arrival minus the arrival of
the voice packet holding the instant it shows (positive: lips after voice).
The server's resident memory is read from /proc every ``--rss-every``
seconds. Start and end are the first and last ``--window`` seconds.

Verdicts: latency or A/V offset grew if its end p50 exceeds its start p50 by
more than ``GROWTH_LIMIT_MS``; memory grew if a line fitted to RSS after the
first window rises faster than ``RSS_LIMIT_MB_PER_MIN``.
"""

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.e2e import add_server_arguments, latency_targets, stream_to_server
from bench.latency import av_offsets_ms, pair_frames
from bench.plots import new_figure, save
from bench.report import Report, Target, percentiles
from bench.server_process import ServerProcess
from bench.speech import looped_speech

NAME = "drift"
SUMMARY = "a long session: latency and A/V offset at start vs end, server memory (RSS) over time"
GROWTH_LIMIT_MS = 10.0
"""End p50 minus start p50 above this (ms) counts as growth: more than jitter, a quarter of a frame."""
RSS_LIMIT_MB_PER_MIN = 1.0
"""RSS rising faster than this (MiB per minute, fitted) counts as growth: 60 MiB over the hour of the target."""


def add_arguments(parser: argparse.ArgumentParser, *, smoke: bool) -> None:
    parser.add_argument(
        "--minutes",
        type=float,
        default=0.1 if smoke else 10.0,
        help="length of the session, minutes (default: %(default)s)",
    )
    parser.add_argument(
        "--window",
        type=float,
        default=2.0 if smoke else 60.0,
        help="seconds at the start and at the end compared (default: %(default)s)",
    )
    parser.add_argument(
        "--rss-every",
        type=float,
        default=0.5 if smoke else 5.0,
        help="seconds between two reads of the server's memory (default: %(default)s)",
    )
    add_server_arguments(parser, smoke=smoke)


def run(args: argparse.Namespace) -> Report:
    seconds = args.minutes * 60.0
    if seconds < 2 * args.window:
        raise ValueError(f"--minutes must give at least two --window of {args.window:g} s")
    memory: list[tuple[float, float]] = []

    def sample(server: ServerProcess) -> None:
        memory.append((time.perf_counter(), server.rss_mb()))

    peer, setup = stream_to_server(args, looped_speech(seconds), voice=True, on_tick=sample, tick_s=args.rss_every)
    timings = pair_frames(peer.traces, peer.video, peer.microphone.sent_s)
    if not timings or not memory:
        raise RuntimeError("no frame could be paired with a server trace, or no memory sample was taken")
    start_s = peer.microphone.sent_s[0]
    end_s = peer.microphone.sent_s[-1]
    latency = [(t.video_arrival_s - start_s, t.latency_ms) for t in timings]
    offsets = [(arrival - start_s, offset) for arrival, offset in av_offsets_ms(timings, peer.voice)]
    rss = [(t - start_s, mb) for t, mb in memory]
    span_s = end_s - start_s
    results: dict[str, Any] = {
        "seconds": span_s,
        "latency_ms": start_end(latency, args.window, span_s),
        "av_offset_ms": start_end(offsets, args.window, span_s),
        "rss_mb": rss_trend(rss, args.window),
        "latency_all_ms": percentiles([v for _, v in latency]),
        "frames_paired": len(timings),
        "voice_packets_received": len(peer.voice.pts),
    }
    results["grew"] = {
        "latency": grew(results["latency_ms"]),
        "av_offset": grew(results["av_offset_ms"]),
        "memory": results["rss_mb"]["slope_mb_per_min"] is not None
        and results["rss_mb"]["slope_mb_per_min"] > RSS_LIMIT_MB_PER_MIN,
    }
    grown = [name for name, grew in results["grew"].items() if grew]
    results["verdict"] = "grew: " + ", ".join(grown) if grown else "nothing grew"
    rows = [
        [
            name,
            results[key]["start"]["p50"],
            results[key]["end"]["p50"],
            results[key]["start"]["p95"],
            results[key]["end"]["p95"],
            results["grew"][grow],
        ]
        for name, key, grow in (("latency ms", "latency_ms", "latency"), ("A/V offset ms", "av_offset_ms", "av_offset"))
    ]
    memory_row = results["rss_mb"]
    rows.append(["server RSS MiB", memory_row["start"], memory_row["end"], None, None, results["grew"]["memory"]])
    targets = latency_targets(results["latency_all_ms"]) + [
        Target(
            "latency growth, end p50 - start p50",
            f"<= {GROWTH_LIMIT_MS:g} ms",
            growth_ms(results["latency_ms"]),
            not results["grew"]["latency"],
        ),
        Target(
            "RSS slope after the first window",
            f"<= {RSS_LIMIT_MB_PER_MIN:g} MiB/min",
            memory_row["slope_mb_per_min"],
            not results["grew"]["memory"],
        ),
    ]
    print(f"drift: {results['verdict']}")
    return Report(
        scenario=NAME,
        smoke=args.smoke,
        config={
            "minutes": args.minutes,
            "window_s": args.window,
            "rss_every_s": args.rss_every,
            "size_px": args.size,
            "fps": args.fps,
            "voice": True,
        },
        setup=setup,
        results=results,
        headers=["measure", "start p50", "end p50", "start p95", "end p95", "grew"],
        rows=rows,
        targets=targets,
        plot=lambda path: _plot(latency, offsets, rss, args.window, path),
    )


def start_end(series: list[tuple[float, float]], window_s: float, span_s: float) -> dict[str, Any]:
    """Percentiles of the values in the first and the last ``window_s`` seconds of a (time, value) series."""
    return {
        "start": percentiles([v for t, v in series if t <= window_s]),
        "end": percentiles([v for t, v in series if t >= span_s - window_s]),
    }


def growth_ms(edges: dict[str, Any]) -> float | None:
    """End p50 minus start p50 of :func:`start_end`'s output (None when either window is empty)."""
    start, end = edges["start"]["p50"], edges["end"]["p50"]
    return None if start is None or end is None else end - start


def grew(edges: dict[str, Any]) -> bool | None:
    """Whether :func:`growth_ms` exceeds ``GROWTH_LIMIT_MS`` (None when not measured)."""
    difference = growth_ms(edges)
    return None if difference is None else difference > GROWTH_LIMIT_MS


def rss_trend(series: list[tuple[float, float]], window_s: float) -> dict[str, Any]:
    """First, last and peak RSS (MiB), and the slope of a line fitted after the first window (MiB/min)."""
    times = np.asarray([t for t, _ in series])
    values = np.asarray([v for _, v in series])
    late = times > window_s
    slope = float(np.polyfit(times[late] / 60.0, values[late], 1)[0]) if late.sum() >= 3 else None
    return {
        "start": float(values[0]),
        "end": float(values[-1]),
        "max": float(values.max()),
        "slope_mb_per_min": slope,
        "series": [[round(t, 2), round(v, 2)] for t, v in series],
    }


def _plot(
    latency: list[tuple[float, float]],
    offsets: list[tuple[float, float]],
    rss: list[tuple[float, float]],
    window_s: float,
    path: Path,
) -> None:
    """Three panels over the session's time: latency, A/V offset (points and rolling median), RSS."""
    figure = new_figure(9, 8)
    panels = [(latency, "latency, ms"), (offsets, "A/V offset, ms (lips after voice)"), (rss, "server RSS, MiB")]
    for i, (series, label) in enumerate(panels):
        axes = figure.add_subplot(3, 1, i + 1)
        if series:
            times = np.asarray([t for t, _ in series]) / 60.0
            values = np.asarray([v for _, v in series])
            axes.plot(times, values, ".", markersize=1.5, alpha=0.4)
            if len(values) > 50:
                k = max(25, len(values) // 100)
                rolling = np.asarray([np.median(values[max(0, j - k) : j + 1]) for j in range(len(values))])
                axes.plot(times, rolling, "-", linewidth=1.2, label=f"rolling median of {k}")
                axes.legend(fontsize=8, loc="upper right")
            for edge in (window_s / 60.0, times[-1] - window_s / 60.0):
                axes.axvline(edge, color="grey", linewidth=0.5)
        axes.set_ylabel(label)
    figure.axes[-1].set_xlabel("minutes since the first audio packet")
    save(figure, path)
