"""``peers``: how many 25 fps sessions ``avatar serve`` holds with real WebRTC clients, not simulated ones.

    python -m bench peers                    # 1, 2, ... sessions until more than 1 % of frames are late

``avatar serve`` runs in its own process (``bench/server_process.py``); this
process runs N light clients (``bench/light_peer.py``: pre-encoded Opus
replayed at real time, video counted from RTP without decoding) on the same
cores, so the count is what a deployment sees with Opus decoding, RTP, SRTP
and DTLS included, which the simulation (``throughput``) leaves out. The
clients' own CPU is measured and reported beside the server's.

Per session count: the clients connect a fraction of a packet apart (their
audio at different phases, as real users'), run ``--warmup`` seconds, then
``--seconds`` are measured. A frame is due every 1/fps of each session's
audio; it is on time when the server's trace for it (stats messages on the
"control" channel) says its render ended within one frame interval of its
audio's arrival, the server's own deadline, as ``throughput`` counts. Due
frames without such a trace (skipped, expired, late) are late. The count
goes up until more than 1 % are late.
"""

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

from matplotlib.ticker import MaxNLocator

from bench.e2e import add_server_arguments
from bench.light_peer import LightPeer, connect_light, opus_packets
from bench.models import generator_source, model_setup
from bench.plots import new_figure, save
from bench.report import Report, Target
from bench.server_process import ServerProcess, running_server, server_arguments
from bench.speech import looped_speech
from bench.targets import MAX_LATE_RATE, MIN_REAL_SESSIONS
from bench.webrtc_peer import _require_shared_clock
from engine.backends.model_files import cache_dir

NAME = "peers"
SUMMARY = "most 25 fps sessions with <= 1% late frames, real light WebRTC clients, server in its own process"
TRACE_TAIL_S = 1.5
"""Wait after the window for the stats message (about one a second) holding its last traces."""
CONNECT_TIMEOUT_S = 30.0


def add_arguments(parser: argparse.ArgumentParser, *, smoke: bool) -> None:
    parser.add_argument("--min-sessions", type=int, default=1, help="first session count (default: 1)")
    parser.add_argument(
        "--max-sessions", type=int, default=1 if smoke else 8, help="last session count (default: %(default)s)"
    )
    parser.add_argument(
        "--seconds", type=float, default=3.0 if smoke else 20.0, help="measured s per count (default: %(default)s)"
    )
    parser.add_argument(
        "--warmup", type=float, default=2.0 if smoke else 4.0, help="seconds before measuring (default: %(default)s)"
    )
    add_server_arguments(parser, smoke=smoke)


def judge(
    traces: list[dict[str, Any]], sessions: int, *, fps: int, start_s: float, end_s: float
) -> dict[str, float | int]:
    """Due, on-time and late frames of ``sessions`` sessions over [start_s, end_s) from the servers' traces."""
    due = int(round(sessions * fps * (end_s - start_s)))
    on_time = sum(
        1
        for trace in traces
        if trace.get("render_end_s") is not None
        and start_s <= trace["audio_arrival_s"] < end_s
        and trace["render_end_s"] - trace["audio_arrival_s"] <= 1.0 / fps
    )
    on_time = min(on_time, due)
    return {"due": due, "on_time": on_time, "late": due - on_time, "late_rate": (due - on_time) / max(due, 1)}


async def measure_count(base_url: str, packets: list[bytes], sessions: int, args: argparse.Namespace) -> dict[str, Any]:
    """Run ``sessions`` light clients against the server; what they saw in the measured window."""
    peers: list[LightPeer] = []
    try:
        for index in range(sessions):
            peers.append(await connect_light(base_url, packets))
            await asyncio.sleep(0.020 * (index + 1) / (sessions + 1))  # spread the clients' packet phases
        deadline_s = time.perf_counter() + CONNECT_TIMEOUT_S
        while not all(peer.video.packets for peer in peers):
            if time.perf_counter() > deadline_s:
                raise RuntimeError(f"not every client received video within {CONNECT_TIMEOUT_S:g} s")
            await asyncio.sleep(0.1)
        await asyncio.sleep(args.warmup)
        start_s, cpu_start_s = time.perf_counter(), time.process_time()
        await asyncio.sleep(args.seconds)
        end_s, client_cpu_s = time.perf_counter(), time.process_time() - cpu_start_s
        await asyncio.sleep(TRACE_TAIL_S)
    finally:
        await asyncio.gather(*(peer.close() for peer in peers), return_exceptions=True)
    traces = [trace for peer in peers for trace in peer.traces]
    received_fps = [peer.video.frames_between(start_s, end_s) / (end_s - start_s) for peer in peers]
    return {
        "sessions": sessions,
        **judge(traces, sessions, fps=args.fps, start_s=start_s, end_s=end_s),
        "received_fps_mean": sum(received_fps) / len(received_fps),
        "received_fps_min": min(received_fps),
        "client_cpu_cores": client_cpu_s / (end_s - start_s),
        "window_s": end_s - start_s,
    }


def run(args: argparse.Namespace) -> Report:
    _require_shared_clock()
    generator = generator_source(args.width, cache_dir() / "bench")
    setup = model_setup(args.backend, generator, precision=args.precision, threads=args.threads, streams=args.streams)
    packets = opus_packets(looped_speech(30.0))
    arguments = server_arguments(setup, generator, size_px=args.size, fps=args.fps, max_sessions=args.max_sessions)
    print(f"{NAME}: starting avatar serve {' '.join(arguments)} ...", flush=True)
    points: list[dict[str, Any]] = []
    with running_server(arguments) as server:
        for sessions in range(args.min_sessions, args.max_sessions + 1):
            point = _measured(server, packets, sessions, args)
            points.append(point)
            print(
                f"  {sessions} sessions: {point['late_rate']:.1%} late ({point['due']} due), received "
                f"{point['received_fps_mean']:.1f} fps per session, server {point['server_cpu_cores']:.2f} cores, "
                f"clients {point['client_cpu_cores']:.2f} cores",
                flush=True,
            )
            if point["late_rate"] > MAX_LATE_RATE:
                break
    best = max((p["sessions"] for p in points if p["late_rate"] <= MAX_LATE_RATE), default=0)
    return Report(
        scenario=NAME,
        smoke=args.smoke,
        config={
            "seconds": args.seconds,
            "warmup_s": args.warmup,
            "size_px": args.size,
            "fps": args.fps,
            "clients": "light aiortc peers in one process (pre-encoded Opus, video counted from RTP, not decoded)",
        },
        setup=setup.as_dict(),
        results={"points": points, "max_sessions_ok": best},
        headers=["sessions", "late %", "due", "fps received (mean)", "(min)", "server cores", "client cores"],
        rows=[
            [
                p["sessions"],
                100 * p["late_rate"],
                p["due"],
                p["received_fps_mean"],
                p["received_fps_min"],
                p["server_cpu_cores"],
                p["client_cpu_cores"],
            ]
            for p in points
        ],
        targets=[
            Target(
                f"25 fps sessions with real light peers, <= {MAX_LATE_RATE:.0%} late",
                f">= {MIN_REAL_SESSIONS}",
                best,
                best >= MIN_REAL_SESSIONS,
            )
        ],
        plot=lambda path: _plot(points, path),
    )


def _measured(server: ServerProcess, packets: list[bytes], sessions: int, args: argparse.Namespace) -> dict[str, Any]:
    cpu_before_s, started_s = server.cpu_s(), time.perf_counter()
    point = asyncio.run(measure_count(server.base_url, packets, sessions, args))
    point["server_cpu_cores"] = (server.cpu_s() - cpu_before_s) / (time.perf_counter() - started_s)
    return point


def _plot(points: list[dict[str, Any]], path: Path) -> None:
    """Late frames and CPU (server, clients) against sessions; the 1 % limit dotted."""
    figure = new_figure(8, 4.5)
    axes = figure.add_subplot(1, 1, 1)
    sessions = [p["sessions"] for p in points]
    axes.plot(sessions, [100 * p["late_rate"] for p in points], marker="o", label="late frames, %")
    axes.axhline(100 * MAX_LATE_RATE, linestyle=":", color="grey")
    axes.set_xlabel("concurrent sessions at 25 fps (real light WebRTC clients)")
    axes.set_ylabel("late frames, %")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    cpu = axes.twinx()
    cpu.plot(sessions, [p["server_cpu_cores"] for p in points], color="tab:red", marker="s", label="server cores")
    cpu.plot(sessions, [p["client_cpu_cores"] for p in points], color="tab:green", marker="^", label="client cores")
    cpu.set_ylabel("CPU cores (averaged over the run)")
    figure.legend(loc="upper left", fontsize=8)
    save(figure, path)
