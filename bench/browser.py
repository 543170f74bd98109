"""``browser``: latency as the person in a browser sees it: headless Chromium on the project's own page.

The server is ``avatar serve`` in its own process (``bench/server_process.py``).
The client is Debian's Chromium, headless, driven by Playwright: it opens the
page at ``/`` and, instead of a microphone, sends speech whose timing the page
knows: phrases after pauses (as ``e2e``) played through WebAudio into the
outgoing track (``clients/web/avatar_web/speech.js``). The page itself pairs every frame it
presents (``requestVideoFrameCallback``) with the server's trace of it and pins
its clock to the session's audio clock through speech onsets heard on both
sides (``clients/web/avatar_web/measure.js``); this scenario reads what the page measured.

Reported, p50 / p95 / p99 over the frames presented after the first onset:

- end to end: a speech sample entered the page's outgoing track -> the frame
  showing it presented (``presentationTime``); also to ``expectedDisplayTime``;
- where it goes, per frame, adding up to the end to end: the audio window
  (the frame's instant -> the last sample it needs: the lookahead), uplink
  (that sample entered the track -> arrived at the server), the server's
  share (audio arrived -> frame handed to the RTP sender), downlink (-> frame
  received by Chromium) and the browser's share (received -> presented);
  uplink and downlink set the server's clock beside the page's (both
  monotonic on one machine: ``_page_clock``);
- the video jitter buffer's delay per emitted frame (``getStats``, per ~1 s window);
- presented fps (all frames) and fresh fps (newly rendered ones);
- the page's WebAudio clock against real time: headless Chromium has no sound
  card, and its stand-in sometimes renders the speech slower than real time
  (the page times each sample from when it was rendered, so the latency
  stays right; the server then gets less than 25 frames' worth of speech a
  second and repeats frames);
- the RTP clock against the presentation clock over the run (must stay
  within 1 %: a receiver schedules playout from RTP timestamps).

``--load N`` runs N other sessions against the same server meanwhile
(aiortc peers streaming speech, in a process of their own, ``bench/load.py``).
``--playout-delay browser`` serves without asking Chromium to show frames on
arrival (``engine/output/playout_delay.py``): its jitter buffer decides.
"""

import argparse
import asyncio
import base64
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.e2e import add_server_arguments, add_speech_arguments, stream_config
from bench.models import generator_source, model_setup
from bench.plots import new_figure, save
from bench.report import PERCENTILE_HEADERS, Report, Target, percentile_cells, percentiles
from bench.server_process import running_server, server_arguments
from bench.speech import paused_speech, wav_bytes
from engine.backends.model_files import cache_dir
from engine.output.tracks import VIDEO_CLOCK_RATE_HZ
from engine.server.config import PLAYOUT_DELAYS, ServerConfig

NAME = "browser"
SUMMARY = "latency as presented in real Chromium on the project's page (speech through WebAudio), optionally under load"

PRESENTED_P50_MS = 100.0
PRESENTED_P95_MS = 180.0
BUFFER_P95_MS = 60.0
MIN_PRESENTED_FPS = 24.0
MAX_RTP_CLOCK_ERROR = 0.01
SETTLE_S = 2.0
"""Seconds waited after the speech ends, so that the last frames and stats arrive."""
PAGE_CLOCK_READS = 9
"""Round trips into the page when setting its clock beside this machine's (``_page_clock``)."""

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
"""The flags that work on these machines (FIELD_NOTES.md); Playwright adds --headless and a fresh profile."""


def add_arguments(parser: argparse.ArgumentParser, *, smoke: bool) -> None:
    add_speech_arguments(parser, seconds=8.0 if smoke else 60.0)
    parser.add_argument(
        "--load", type=int, default=0, help="other sessions running against the same server meanwhile (default: 0)"
    )
    parser.add_argument(
        "--playout-delay",
        choices=PLAYOUT_DELAYS,
        default=ServerConfig().playout_delay,
        help="the server's --playout-delay: zero asks Chromium to show frames on arrival, browser leaves the "
        "delay to its jitter buffer (default: %(default)s, the server's default)",
    )
    add_server_arguments(parser, smoke=smoke)


def run(args: argparse.Namespace) -> Report:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise RuntimeError("Chromium is not installed (Debian: apt-get install chromium)")
    speech = paused_speech(args.seconds, silence_s=args.silence, phrase_s=args.phrase)
    generator = generator_source(args.width, cache_dir() / "bench")
    setup = model_setup(args.backend, generator, precision=args.precision, threads=args.threads, streams=args.streams)
    arguments = server_arguments(setup, generator, size_px=args.size, fps=args.fps, max_sessions=1 + args.load)
    arguments += ["--playout-delay", args.playout_delay]
    print(f"browser: starting avatar serve {' '.join(arguments)} ...", flush=True)
    with running_server(arguments) as server:
        load = _start_load(server.base_url, args.load, args.seconds + 30.0) if args.load else None
        try:
            measured = asyncio.run(_measure(chromium, server.base_url, speech.audio, args.seconds))
        finally:
            if load is not None:
                load.terminate()
                load.wait(timeout=30)
    return _report(args, setup.as_dict(), measured)


def _start_load(base_url: str, sessions: int, seconds: float) -> subprocess.Popen[bytes]:
    """``sessions`` aiortc peers streaming speech to the server, in a process of their own."""
    command = [sys.executable, "-m", "bench.load", base_url, "--sessions", str(sessions), "--seconds", str(seconds)]
    process = subprocess.Popen(command)
    time.sleep(3.0)  # let them connect before the measured session starts
    if process.poll() is not None:
        raise RuntimeError(f"the load process ended at once (exit {process.returncode})")
    return process


async def _measure(chromium: str, base_url: str, audio: np.ndarray, seconds: float) -> dict[str, Any]:
    from playwright.async_api import async_playwright  # dev extra; only this scenario needs it

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(f"{base_url}/")
            print(f"browser: Chromium sends {seconds:g} s of speech through the page ...", flush=True)
            started_s = time.perf_counter()
            await page.evaluate("(wav) => window.avatarBench.start(wav)", _wav_base64(audio))
            status = await page.text_content("#status")
            if status is not None and status.startswith("Could not start"):
                raise RuntimeError(f"the page could not start: {status}")
            await asyncio.sleep(seconds + SETTLE_S - (time.perf_counter() - started_s))
            measured: dict[str, Any] = await page.evaluate("() => window.avatarBench.measurements()")
            measured["page_clock"] = await _page_clock(page)
            await page.evaluate("() => window.avatarBench.stop()")
            if errors:
                raise RuntimeError(f"the page raised: {errors}")
            measured["seconds"] = time.perf_counter() - started_s
            return measured
        finally:
            await browser.close()


async def _page_clock(page: Any) -> dict[str, float]:
    """Where the page's ``performance.now()`` puts the zero of this machine's monotonic clock, in ms.

    Both are CLOCK_MONOTONIC underneath (Chromium's TimeTicks on Linux; the
    server's ``time.perf_counter()``), offset by the page's time origin. Read
    from here around a round trip into the page; the shortest of a few
    bounds the error: ``uncertainty_ms`` is half of it.
    """
    best: tuple[float, float] | None = None
    for _ in range(PAGE_CLOCK_READS):
        before = time.perf_counter()
        page_ms = float(await page.evaluate("() => performance.now()"))
        after = time.perf_counter()
        round_trip_ms = (after - before) * 1000
        if best is None or round_trip_ms < best[1]:
            best = ((before + after) / 2 * 1000 - page_ms, round_trip_ms)
    assert best is not None
    return {"monotonic_minus_page_ms": best[0], "uncertainty_ms": best[1] / 2}


def _wav_base64(audio: np.ndarray) -> str:
    """16 kHz mono float32 -> a PCM16 WAV file, base64 (what the page decodes with WebAudio)."""
    return base64.b64encode(wav_bytes(audio)).decode("ascii")


def _report(args: argparse.Namespace, setup: dict[str, Any], measured: dict[str, Any]) -> Report:
    frames = [f for f in measured["frames"] if f["latency_ms"] is not None and f["due_entered_ms"] is not None]
    if not frames:
        raise RuntimeError(
            "no presented frame could be paired with the speech: "
            f"{len(measured['frames'])} frames paired with traces, server onsets {measured['server_onsets']}, "
            f"page onsets {len(measured['page_onsets_s'])}, RTP offset {measured['rtp_offset']}"
        )
    latency = percentiles([f["latency_ms"] for f in frames])
    expected = percentiles([f["expected_display_latency_ms"] for f in frames])
    receive = percentiles([f["receive_to_present_ms"] for f in frames])
    server = percentiles([f["server_ms"] for f in frames])
    parts = {
        name: percentiles(values)
        for name, values in _split(frames, measured["page_clock"]["monotonic_minus_page_ms"]).items()
    }
    buffer = percentiles([w["jitter_buffer_ms"] for w in measured["jitter_buffer"]])
    first_ms, last_ms = frames[0]["presented_ms"], frames[-1]["presented_ms"]
    presented_s = (last_ms - first_ms) / 1000
    fresh_fps = (len(frames) - 1) / presented_s if presented_s > 0 else 0.0
    shown = [t for t in measured["presented_times_ms"] if first_ms <= t <= last_ms]
    presented_fps = (len(shown) - 1) / presented_s if presented_s > 0 else 0.0
    # The RTP clock's rate against the presentation clock: the slope of pts over presentation times.
    pts_s = [f["pts"] / VIDEO_CLOCK_RATE_HZ for f in frames]
    slope = np.polyfit([f["presented_ms"] / 1000 for f in frames], pts_s, 1)[0]
    rtp_clock_error = float(slope) - 1 if len(frames) > 2 else None
    results = {
        "latency_ms": latency,
        "expected_display_latency_ms": expected,
        "receive_to_present_ms": receive,
        "jitter_buffer_ms": buffer,
        "server_ms": server,
        **{f"{name}_ms": stats for name, stats in parts.items()},
        "page_clock_uncertainty_ms": measured["page_clock"]["uncertainty_ms"],
        "speech_clock_rate": measured["speech_clock_rate"],
        "presented_fps": presented_fps,
        "fresh_fps": fresh_fps,
        "rtp_clock_error": rtp_clock_error,
        "onset_agreement": measured["onset_agreement"],
        "frames_paired": len(frames),
        "latency_series_ms": [round(f["latency_ms"], 2) for f in frames],
        "presented_s": [round((f["presented_ms"] - frames[0]["presented_ms"]) / 1000, 4) for f in frames],
        "jitter_buffer_series_ms": [round(w["jitter_buffer_ms"], 2) for w in measured["jitter_buffer"]],
    }
    rows = [
        ["end to end: sample entered the page's track -> frame presented", *percentile_cells(latency)],
        ["  ... -> frame's expected display time", *percentile_cells(expected)],
        ["  audio window: frame's instant -> last sample it needs", *percentile_cells(parts["window"])],
        ["  uplink: that sample entered the track -> arrived at server", *percentile_cells(parts["uplink"])],
        ["  server: audio arrived -> frame sent", *percentile_cells(server)],
        ["  downlink: frame sent -> received by Chromium", *percentile_cells(parts["downlink"])],
        ["  browser: frame received -> presented", *percentile_cells(receive)],
        ["  browser: video jitter buffer per frame (1 s windows)", *percentile_cells(buffer)],
        ["presented fps (all) / fresh fps", f"{presented_fps:.1f}", f"{fresh_fps:.1f}", "", ""],
        ["RTP clock vs presentation clock", f"{100 * (rtp_clock_error or 0):+.2f} %", "", "", ""],
        ["page's WebAudio clock vs real time", _rate_cell(measured["speech_clock_rate"]), "", "", ""],
    ]
    targets = [
        _at_most("presented latency p50", latency["p50"], PRESENTED_P50_MS, "ms"),
        _at_most("presented latency p95", latency["p95"], PRESENTED_P95_MS, "ms"),
        _at_most("browser receive buffer p95", buffer["p95"], BUFFER_P95_MS, "ms"),
        Target("presented fps", f">= {MIN_PRESENTED_FPS:g}", presented_fps, presented_fps >= MIN_PRESENTED_FPS),
        Target(
            "RTP clock vs wall clock",
            f"within {100 * MAX_RTP_CLOCK_ERROR:g} %",
            None if rtp_clock_error is None else 100 * rtp_clock_error,
            None if rtp_clock_error is None else abs(rtp_clock_error) <= MAX_RTP_CLOCK_ERROR,
        ),
    ]
    return Report(
        scenario=NAME,
        smoke=args.smoke,
        config={
            **stream_config(args),
            "load_sessions": args.load,
            "playout_delay": args.playout_delay,
            "client": "Debian Chromium, headless, the project's page, speech through WebAudio",
        },
        setup=setup,
        results=results,
        headers=PERCENTILE_HEADERS,
        rows=rows,
        targets=targets,
        plot=lambda path: _plot(results, path),
    )


def _split(frames: list[dict[str, Any]], monotonic_minus_page_ms: float) -> dict[str, list[float]]:
    """The end-to-end latency's parts other than the server's and the browser's, per frame, in ms.

    window (the lookahead: the frame's instant to the last sample it needs,
    on the page's audio clock), uplink (that sample entered the page's track
    -> arrived at the server) and downlink (frame handed to the server's RTP
    sender -> received by Chromium). With ``server_ms`` and
    ``receive_to_present_ms`` they add up to ``latency_ms`` exactly; uplink
    and downlink carry the page clock's uncertainty (``_page_clock``), with
    opposite signs.
    """
    window, uplink, downlink = [], [], []
    for frame in frames:
        window.append(frame["due_entered_ms"] - (frame["presented_ms"] - frame["latency_ms"]))
        uplink.append(frame["audio_arrival_s"] * 1000 - (frame["due_entered_ms"] + monotonic_minus_page_ms))
        downlink.append(frame["received_ms"] + monotonic_minus_page_ms - frame["send_s"] * 1000)
    return {"window": window, "uplink": uplink, "downlink": downlink}


def _rate_cell(rate: float | None) -> str:
    """The speech source's clock rate as a signed percentage off real time (below 0: it fell behind)."""
    return "-" if rate is None else f"{100 * (rate - 1):+.2f} %"


def _at_most(name: str, measured: float | int | None, limit: float, unit: str) -> Target:
    return Target(name, f"<= {limit:g} {unit}", measured, None if measured is None else measured <= limit)


def _plot(results: dict[str, Any], path: Path) -> None:
    """Left: end-to-end latency of each presented frame over the run; right: the jitter buffer per window."""
    figure = new_figure(11, 4.5)
    timeline, buffer = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    timeline.plot(results["presented_s"], results["latency_series_ms"], ".", markersize=2)
    timeline.axhline(PRESENTED_P50_MS, color="black", linestyle=":", linewidth=1)
    timeline.axhline(PRESENTED_P95_MS, color="black", linestyle="--", linewidth=1)
    timeline.set_xlabel("time since the first paired frame, s")
    timeline.set_ylabel("sample entered track -> frame presented, ms")
    timeline.set_ylim(bottom=0)
    series = results["jitter_buffer_series_ms"]
    buffer.plot(np.arange(len(series)), series, "-o", markersize=3)
    buffer.axhline(BUFFER_P95_MS, color="black", linestyle="--", linewidth=1)
    buffer.set_xlabel("~1 s window")
    buffer.set_ylabel("video jitter buffer delay per frame, ms")
    buffer.set_ylim(bottom=0)
    save(figure, path)
