"""``whip``: ``avatar publish`` into a Janus room on loopback: input sample -> frame decoded by a subscriber of
the room, its frame rate, and whether anything grows over the run (an hour by default).

The SFU is Janus 1.1.2 (VideoRoom) behind simple-whip-server on loopback,
started here as the tests start it (``bench/janus.py``; where they are
missing, ``--smoke`` is skipped with the install lines and a full run fails).
``avatar publish --whip URL --input -`` runs as a user runs it, in its own
process (``bench/publish_process.py``, which writes its session's traces and
input arrivals to a file); this process pipes paused speech into its standard
input as raw PCM (``--phrase`` seconds of the built-in sample after
``--silence`` seconds of silence, repeated), which the engine's reader
releases at real-time pace in 20 ms chunks, each stamped as released
(``engine.live.sources.pcm_chunks``), as a microphone's blocks are. A
subscriber in this process joins the room through Janus's HTTP API (aiortc,
each frame released once complete, as a browser does) and logs when each
video frame was decoded, with its RTP timestamp, and each voice packet.

Pairing the subscriber's frames with the publisher's traces. The publisher's
video track stamps each frame from its send instant (90 kHz since its first
frame: ``engine/output/tracks.py``), and a rendered frame's trace carries that
pts. aiortc's sender adds a random origin; Janus rewrites the timestamps it
forwards to each subscriber (its rtp.c, ``janus_rtp_header_update``: the first
forwarded packet's timestamp is the base, continuity kept across a publisher's
SSRC change); aiortc's receiver maps the first timestamp it gets to 0. Each is
a constant offset, so a subscriber's pts is the publisher's plus one constant:
the most common difference between a trace's pts and those of the frames the
subscriber decoded within ``MAX_TRANSIT_S`` after the frame left (the
publisher encodes each frame's pts as its RTP timestamp exactly:
``engine.output.video_encoder``). The run
reports that constant, the raw first timestamp the subscriber received (0:
Janus rebased the stream) and the share of traced frames it paired.

Per paired frame: latency = decoded at the subscriber minus the arrival of the
input chunk holding the audio sample it shows; split into the engine's share
(``bench.cli_session.SEGMENTS``) and ``transport`` (handed to the video track
-> decoded: encoding, SRTP, Janus, the subscriber's depacketizing and
decoding). Frame rate: frames the subscriber decoded a second, over the run
and in each second. Growth: latency p50 in the last ``--window`` against the
first; every ``--sample-every`` seconds the resident memory, open descriptors
and CPU time of the publisher, Janus and simple-whip-server (/proc). Memory
grew if a line fitted after the first window rises faster than
``RSS_LIMIT_MB_PER_MIN``; descriptors grew if the fewest open in the last
window exceed the most open in the first.
"""

import argparse
import asyncio
import collections
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from bench import janus
from bench.cli_session import SEGMENTS, SentFrame, SessionLog, read_json_lines, sent_frames
from bench.drift import GROWTH_LIMIT_MS, RSS_LIMIT_MB_PER_MIN, growth_ms, rss_trend, start_end
from bench.e2e import add_server_arguments
from bench.models import ModelSetup, generator_source, model_setup
from bench.plots import new_figure, save
from bench.report import PERCENTILE_HEADERS, Report, Target, at_least, at_most, percentile_cells, percentiles
from bench.server_process import cpu_s, model_arguments, open_descriptors, rss_mb
from bench.speech import paused_speech
from bench.targets import WHIP_LATENCY_P50_MS, WHIP_MIN_FPS
from engine.backends.model_files import ModelSource, cache_dir
from engine.cli.publish import TOKEN_ENV
from engine.output.whip_publisher import VIDEO_CODECS
from engine.pipeline import SAMPLE_RATE_HZ

NAME = "whip"
SUMMARY = "avatar publish into Janus on loopback: input sample -> frame decoded by a room subscriber; fps; growth"
TOKEN = "bench-whip-token"
MAX_TRANSIT_S = 2.0
"""Longest a frame may take from the publisher's track to the subscriber's decoder and still be paired, s."""
START_TIMEOUT_S = 180.0
"""Longest the publisher may take to load the networks and appear in the room, s (a busy machine)."""
STOP_TIMEOUT_S = 30.0
"""Longest the publisher may take to end its session (DELETE) once its input has ended, s."""
TAIL_S = 1.0
"""Frames still on their way when the publisher ends, s."""
MAX_VOTERS = 2000
"""Traced frames that vote for the pts offset (an hour has 90,000)."""
WRITE_BLOCK_S = 0.1
"""Speech written to the publisher's standard input at a time, s (its reader paces it)."""


@dataclass
class Watched:
    """What one run recorded; wall times are ``time.perf_counter()`` seconds (system-wide monotonic clock).

    log: the publisher's input chunks and frame traces.
    video_s, video_pts: per video frame the subscriber decoded: when, and its pts (90 kHz).
    voice_s: when each voice frame was decoded.
    first_rtp_timestamp: the raw RTP timestamp of the first video packet the subscriber got (None: unknown).
    samples: every ``--sample-every``: t_s and, per process, rss_mb, fds, cpu_s.
    """

    log: SessionLog = field(default_factory=SessionLog)
    video_s: list[float] = field(default_factory=list)
    video_pts: list[int] = field(default_factory=list)
    voice_s: list[float] = field(default_factory=list)
    first_rtp_timestamp: int | None = None
    samples: list[dict[str, Any]] = field(default_factory=list)


def add_arguments(parser: argparse.ArgumentParser, *, smoke: bool) -> None:
    parser.add_argument(
        "--minutes", type=float, default=0.25 if smoke else 60.0, help="speech streamed, minutes (default: %(default)s)"
    )
    parser.add_argument(
        "--window",
        type=float,
        default=3.0 if smoke else 60.0,
        help="seconds at the start and at the end compared for growth (default: %(default)s)",
    )
    parser.add_argument(
        "--sample-every",
        type=float,
        default=1.0 if smoke else 5.0,
        help="seconds between two reads of the processes' memory and descriptors (default: %(default)s)",
    )
    parser.add_argument("--silence", type=float, default=2.0, help="pause before each phrase, s (default: 2.0)")
    parser.add_argument("--phrase", type=float, default=3.0, help="each phrase of speech, s (default: 3.0)")
    parser.add_argument(
        "--video-codec", choices=sorted(VIDEO_CODECS), default="vp8", help="video codec published (default: vp8)"
    )
    add_server_arguments(parser, smoke=smoke)


def run(args: argparse.Namespace) -> Report:
    generator = generator_source(args.width, cache_dir() / "bench")
    setup = model_setup(
        args.backend, generator, precision=args.precision, threads=args.threads, streams=args.streams, serving=False
    )
    config = {
        "minutes": args.minutes,
        "window_s": args.window,
        "sample_every_s": args.sample_every,
        "silence_s": args.silence,
        "phrase_s": args.phrase,
        "video_codec": args.video_codec,
        "size_px": args.size,
        "fps": args.fps,
        "sfu": "Janus 1.1.2 VideoRoom + simple-whip-server, loopback",
    }
    missing = janus.missing()
    if missing is not None:
        if not args.smoke:
            raise RuntimeError(f"the WHIP bench needs Janus and simple-whip-server here: {missing}")
        print(f"whip: skipped: {missing}")
        return _skipped(args, config, setup, missing)
    seconds = args.minutes * 60.0
    if seconds < 2 * args.window:
        raise ValueError(f"--minutes must give at least two --window of {args.window:g} s")
    with tempfile.TemporaryDirectory(prefix="bench-whip-") as folder:
        watched = asyncio.run(_publish_and_watch(args, setup, generator, Path(folder), seconds))
    results = _results(watched, args)
    return _report(args, config, setup, results, watched)


# -- the run -----------------------------------------------------------------------------------------


async def _publish_and_watch(
    args: argparse.Namespace, setup: ModelSetup, generator: ModelSource, folder: Path, seconds: float
) -> Watched:
    """Start the SFU and the publisher, subscribe, pipe ``seconds`` of speech, sample the processes, stop."""
    watched = Watched()
    async with janus.running_sfu(folder) as sfu:
        url = await sfu.create_endpoint(args.video_codec, token=TOKEN)
        trace_file, output = folder / "publisher.jsonl", folder / "publisher.log"
        command = [sys.executable, "-m", "bench.publish_process", str(trace_file), "--", "--whip", url]
        command += ["--input", "-", "--video-codec", args.video_codec, "--fps", str(args.fps), "--size", str(args.size)]
        command += ["--stats-interval", "0", *model_arguments(setup, generator)]
        print(f"whip: {' '.join(command)}", flush=True)
        with output.open("w") as out:
            publisher = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
                bufsize=0,
                env={**os.environ, TOKEN_ENV: TOKEN, "PYTHONUNBUFFERED": "1"},
            )
        subscriber = janus.JanusSubscriber(sfu.janus_http)
        try:
            subscription = await _subscribe(subscriber, janus.ROOMS[args.video_codec], watched, publisher, output)
            await _until_frames(watched, args.fps, publisher, output)
            watched.first_rtp_timestamp = _first_rtp_timestamp(subscription)
            pids = {"publisher": publisher.pid, **sfu.pids}
            assert publisher.stdin is not None
            speech = paused_speech(args.silence + args.phrase, silence_s=args.silence, phrase_s=args.phrase).audio
            writer = threading.Thread(target=_write_speech, args=(publisher.stdin, speech, seconds), daemon=True)
            print(f"whip: streaming {seconds:g} s of speech into avatar publish ...", flush=True)
            writer.start()
            while writer.is_alive():
                _check_running(publisher, output)
                watched.samples.append(_sample(pids))
                await asyncio.to_thread(writer.join, args.sample_every)
            watched.samples.append(_sample(pids))
            status = await asyncio.to_thread(publisher.wait, STOP_TIMEOUT_S)
            if status != 0:
                raise RuntimeError(f"avatar publish exited with status {status}: {_tail(output)}")
            await asyncio.sleep(TAIL_S)
        finally:
            await subscriber.close()
            _stop(publisher)
        watched.log = read_json_lines(trace_file)
    return watched


async def _subscribe(
    subscriber: janus.JanusSubscriber, room: int, watched: Watched, publisher: subprocess.Popen, output: Path
) -> janus.Subscription:
    """Join the room as soon as the publisher is in it; fail early if the publisher dies first."""

    def on_video(_: float, frame: Any) -> None:
        watched.video_s.append(time.perf_counter())
        watched.video_pts.append(int(frame.pts))

    def on_voice(_: float, frame: Any) -> None:
        watched.voice_s.append(time.perf_counter())

    joining = asyncio.ensure_future(
        subscriber.subscribe(room, START_TIMEOUT_S, on_video=on_video, on_audio=on_voice, browser_like=True)
    )
    while not joining.done():
        if publisher.poll() is not None:
            joining.cancel()
        await asyncio.wait({joining}, timeout=0.5)
    _check_running(publisher, output)
    return joining.result()


async def _until_frames(watched: Watched, fps: int, publisher: subprocess.Popen, output: Path) -> None:
    """Wait for a second of the still picture at the subscriber (ICE, DTLS, the first keyframe)."""
    deadline = time.perf_counter() + START_TIMEOUT_S
    while len(watched.video_s) < fps:
        _check_running(publisher, output)
        if time.perf_counter() > deadline:
            raise RuntimeError(f"the subscriber decoded {len(watched.video_s)} frames in {START_TIMEOUT_S:g} s")
        await asyncio.sleep(0.2)


def _first_rtp_timestamp(subscription: janus.Subscription) -> int | None:
    """The raw RTP timestamp of the first video packet received (aiortc's receiver maps it to pts 0)."""
    for receiver in subscription.pc.getReceivers():
        if receiver.track is not None and receiver.track.kind == "video":
            mapper = getattr(receiver, "_RTCRtpReceiver__timestamp_mapper", None)  # private: a diagnostic only
            origin = getattr(mapper, "_origin", None)
            return int(origin) if origin is not None else None
    return None


def _write_speech(stdin: IO[bytes], cycle: np.ndarray, seconds: float) -> None:
    """``seconds`` of ``cycle`` (16 kHz mono float32, repeated) as s16le into ``stdin``, then close it (the end
    of the input). Writes block while the pipe is full: the publisher's reader sets the pace."""
    pcm = np.tile((np.clip(cycle, -1, 1) * 32767).astype("<i2"), 2)  # two cycles: a block never wraps
    block = int(WRITE_BLOCK_S * SAMPLE_RATE_HZ)
    total = int(seconds * SAMPLE_RATE_HZ)
    try:
        for start in range(0, total, block):
            offset = start % cycle.size
            stdin.write(pcm[offset : offset + min(block, total - start)].tobytes())
        stdin.close()
    except (BrokenPipeError, ValueError):  # the publisher is gone: the main loop reports why
        return


def _sample(pids: dict[str, int]) -> dict[str, Any]:
    """The time and, per process still running, its RSS (MiB), open descriptors and CPU seconds."""
    sample: dict[str, Any] = {"t_s": time.perf_counter()}
    for name, pid in pids.items():
        try:
            sample[name] = {"rss_mb": rss_mb(pid), "fds": open_descriptors(pid), "cpu_s": cpu_s(pid)}
        except (FileNotFoundError, ProcessLookupError):
            continue
    return sample


def _check_running(publisher: subprocess.Popen, output: Path) -> None:
    if publisher.poll() is not None:
        raise RuntimeError(f"avatar publish exited ({publisher.returncode}): {_tail(output)}")


def _tail(output: Path) -> str:
    return "\n".join(output.read_text(errors="replace").splitlines()[-30:])


def _stop(publisher: subprocess.Popen) -> None:
    if publisher.poll() is None:
        publisher.terminate()
        try:
            publisher.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            publisher.kill()
            publisher.wait()


# -- from records to figures -------------------------------------------------------------------------


def pts_offset(frames: list[SentFrame], received_s: np.ndarray, received_pts: np.ndarray) -> tuple[int, int]:
    """The constant to add to a publisher's pts to get the subscriber's, and how many traced frames voted for it.

    ``received_s`` ascending. Each traced frame votes for the difference to every frame the subscriber decoded
    within ``MAX_TRANSIT_S`` after it left (``MAX_VOTERS`` frames at most, spread over the run); the true offset
    gets a vote from nearly every frame, any other from few.
    """
    votes: collections.Counter[int] = collections.Counter()
    for frame in frames[:: max(1, len(frames) // MAX_VOTERS)]:
        assert frame.pts is not None
        first, last = np.searchsorted(received_s, (frame.send_s, frame.send_s + MAX_TRANSIT_S))
        votes.update(int(p) - frame.pts for p in received_pts[first:last])
    if not votes:
        raise RuntimeError("no decoded frame arrived after any traced frame left")
    return votes.most_common(1)[0]


def _results(watched: Watched, args: argparse.Namespace) -> dict[str, Any]:
    log = watched.log
    if not log.chunk_arrivals_s or not watched.video_s:
        raise RuntimeError("no input reached the publisher, or no frame reached the subscriber")
    frames = [f for f in sent_frames(log) if f.pts is not None]
    received_s = np.asarray(watched.video_s)
    received_pts = np.asarray(watched.video_pts, dtype=np.int64)
    offset, votes = pts_offset(frames, received_s, received_pts)
    decoded_at: dict[int, float] = {}
    for pts, arrival_s in zip(received_pts.tolist(), received_s.tolist()):
        decoded_at.setdefault(pts, arrival_s)
    paired = []
    for frame in frames:
        assert frame.pts is not None
        decoded_s = decoded_at.get(frame.pts + offset)
        if decoded_s is not None:
            paired.append((frame, decoded_s))
    if not paired:
        raise RuntimeError("no traced frame could be paired with a decoded one")
    start_s, end_s = log.chunk_arrivals_s[0], log.chunk_arrivals_s[-1]
    latency = [(decoded - start_s, (decoded - f.sample_in_s) * 1e3) for f, decoded in paired]
    in_run = (received_s >= start_s) & (received_s <= end_s)
    run_s = received_s[in_run] - start_s
    seconds = int(end_s - start_s)
    per_second = np.bincount(run_s.astype(int), minlength=seconds)[:seconds]
    voice_s = np.asarray(watched.voice_s)
    span_s = end_s - start_s
    results: dict[str, Any] = {
        "seconds": span_s,
        "latency_ms": percentiles([v for _, v in latency]),
        "latency_edges_ms": start_end(latency, args.window, span_s),
        "engine_ms": percentiles([f.latency_ms for f, _ in paired]),
        "segments_ms": {name: percentiles([f.segments_ms()[name] for f, _ in paired]) for name in SEGMENTS},
        "transport_ms": percentiles([(decoded - f.send_s) * 1e3 for f, decoded in paired]),
        "subscriber": {
            "frames": int(in_run.sum()),
            "fps": float(in_run.sum() / span_s),
            "fps_per_second": {
                "min": int(per_second.min()) if per_second.size else None,
                "p5": float(np.percentile(per_second, 5)) if per_second.size else None,
                "seconds_below_target": int((per_second < WHIP_MIN_FPS).sum()),
            },
            "gap_ms": percentiles(np.diff(received_s[in_run]) * 1e3),
            "voice_frames_per_s": float(((voice_s >= start_s) & (voice_s <= end_s)).sum() / span_s),
        },
        "pairing": {
            "pts_offset": offset,
            "votes": votes,
            "first_rtp_timestamp": watched.first_rtp_timestamp,
            "traced_frames": len(frames),
            "paired_frames": len(paired),
            "paired_share": _paired_share(frames, paired, received_s),
        },
        "processes": _processes(watched.samples, start_s, args.window),
        "latency_series": [[round(t, 3), round(v, 2)] for t, v in latency],
        "fps_series": per_second.tolist(),
    }
    results["latency_growth_ms"] = growth_ms(results["latency_edges_ms"])
    return results


def _paired_share(frames: list[SentFrame], paired: list[tuple[SentFrame, float]], received_s: np.ndarray) -> float:
    """Paired frames / traced frames that left while the subscriber was receiving (and could have arrived)."""
    receivable = [f for f in frames if received_s[0] <= f.send_s <= received_s[-1] - MAX_TRANSIT_S]
    in_window = [f for f, _ in paired if received_s[0] <= f.send_s <= received_s[-1] - MAX_TRANSIT_S]
    return len(in_window) / len(receivable) if receivable else 0.0


def _processes(samples: list[dict[str, Any]], start_s: float, window_s: float) -> dict[str, Any]:
    """Per process: RSS trend (``bench.drift.rss_trend``), descriptors at the start and end, CPU cores used."""
    summary: dict[str, Any] = {}
    for name in dict.fromkeys(key for sample in samples for key in sample if key != "t_s"):
        points = [(s["t_s"] - start_s, s[name]) for s in samples if name in s]
        if len(points) < 2:
            continue
        span_s = points[-1][0]
        fds = [(t, p["fds"]) for t, p in points]
        first = [n for t, n in fds if t <= window_s] or [fds[0][1]]
        last = [n for t, n in fds if t >= span_s - window_s] or [fds[-1][1]]
        summary[name] = {
            "rss_mb": rss_trend([(t, p["rss_mb"]) for t, p in points], window_s),
            "fds": {
                "start_max": max(first),
                "end_min": min(last),
                "growth": min(last) - max(first),
                "series": [[round(t, 2), n] for t, n in fds],
            },
            "cpu_cores": (points[-1][1]["cpu_s"] - points[0][1]["cpu_s"]) / max(points[-1][0] - points[0][0], 1e-9),
        }
    return summary


# -- report ------------------------------------------------------------------------------------------


def _report(
    args: argparse.Namespace, config: dict[str, Any], setup: ModelSetup, results: dict[str, Any], watched: Watched
) -> Report:
    subscriber, pairing = results["subscriber"], results["pairing"]
    edges = results["latency_edges_ms"]
    rows = [
        ["latency (sample arrived -> frame decoded by the subscriber)", *percentile_cells(results["latency_ms"])],
        [f"  first {args.window:g} s", *percentile_cells(edges["start"])],
        [f"  last {args.window:g} s", *percentile_cells(edges["end"])],
        ["  in avatar publish (sample arrived -> handed to the track)", *percentile_cells(results["engine_ms"])],
        *[[f"    {name}", *percentile_cells(results["segments_ms"][name])] for name in SEGMENTS],
        ["  transport (track -> encode, Janus, decoded)", *percentile_cells(results["transport_ms"])],
        [f"subscriber: gap between frames ({subscriber['fps']:.1f} fps)", *percentile_cells(subscriber["gap_ms"])],
    ]
    targets: list[Target] = [
        at_most("WHIP latency p50", WHIP_LATENCY_P50_MS, results["latency_ms"]["p50"]),
        at_least("frames decoded by the subscriber", WHIP_MIN_FPS, subscriber["fps"], "fps"),
        at_most("latency growth, end p50 - start p50", GROWTH_LIMIT_MS, results["latency_growth_ms"]),
    ]
    for name, process in results["processes"].items():
        slope = process["rss_mb"]["slope_mb_per_min"]
        targets.append(at_most(f"{name} RSS slope after the first window", RSS_LIMIT_MB_PER_MIN, slope, "MiB/min"))
        growth = process["fds"]["growth"]
        targets.append(at_most(f"{name} descriptors, fewest at the end - most at the start", 0, growth, "fds"))
    print(
        f"whip: pts offset {pairing['pts_offset']} ({pairing['votes']} votes), subscriber's first RTP timestamp "
        f"{pairing['first_rtp_timestamp']}, {pairing['paired_share']:.1%} of traced frames paired; "
        f"{subscriber['voice_frames_per_s']:.1f} voice frames/s"
    )
    for name, process in results["processes"].items():
        rss = process["rss_mb"]
        print(
            f"whip: {name}: RSS {rss['start']:.1f} -> {rss['end']:.1f} MiB (slope {rss['slope_mb_per_min']} MiB/min), "
            f"descriptors {process['fds']['start_max']} -> {process['fds']['end_min']}, "
            f"{process['cpu_cores']:.2f} cores"
        )
    return Report(
        scenario=NAME,
        smoke=args.smoke,
        config=config,
        setup=setup.as_dict(),
        results=results,
        headers=PERCENTILE_HEADERS,
        rows=rows,
        targets=targets,
        plot=lambda path: _plot(results, args.window, path),
    )


def _skipped(args: argparse.Namespace, config: dict[str, Any], setup: ModelSetup, reason: str) -> Report:
    return Report(
        scenario=NAME,
        smoke=args.smoke,
        config=config,
        setup=setup.as_dict(),
        results={"skipped": reason},
        headers=["measure", "value"],
        rows=[["skipped", reason]],
        targets=[
            at_most("WHIP latency p50", WHIP_LATENCY_P50_MS, None),
            at_least("frames decoded by the subscriber", WHIP_MIN_FPS, None, "fps"),
        ],
    )


def _plot(results: dict[str, Any], window_s: float, path: Path) -> None:
    """Four panels over the run: latency, frames decoded each second, RSS and descriptors of each process."""
    figure = new_figure(9, 10)
    latency = np.asarray(results["latency_series"]).reshape(-1, 2)
    axes = figure.add_subplot(4, 1, 1)
    axes.plot(latency[:, 0] / 60.0, latency[:, 1], ".", markersize=1.5, alpha=0.4)
    axes.axhline(WHIP_LATENCY_P50_MS, color="black", linestyle=":", linewidth=1)
    axes.set_ylabel("latency, ms")
    axes.set_title("Input sample -> frame decoded by a Janus room subscriber")
    axes = figure.add_subplot(4, 1, 2)
    axes.plot(np.arange(len(results["fps_series"])) / 60.0, results["fps_series"], "-", linewidth=0.8)
    axes.axhline(WHIP_MIN_FPS, color="black", linestyle=":", linewidth=1)
    axes.set_ylabel("frames decoded / s")
    for row, (key, label) in enumerate((("rss_mb", "RSS, MiB"), ("fds", "open descriptors")), start=3):
        axes = figure.add_subplot(4, 1, row)
        for name, process in results["processes"].items():
            series = np.asarray(process[key]["series"]).reshape(-1, 2)
            axes.plot(series[:, 0] / 60.0, series[:, 1], "-", linewidth=1, label=name)
        axes.set_ylabel(label)
        axes.legend(fontsize=8, loc="upper right")
    for axes in figure.axes:
        axes.axvline(window_s / 60.0, color="grey", linewidth=0.5)
    figure.axes[-1].set_xlabel("minutes since the first input chunk")
    save(figure, path)
