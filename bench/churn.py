"""``churn``: WebRTC sessions opened and closed one after another: does the server's memory come back?

``avatar serve`` runs in its own process (``bench/server_process.py``); this
process opens ``--sessions`` WebRTC sessions in turn, as the page does: an
aiortc peer offers speech (``POST /offer``), receives video until
``--hold`` seconds after its first frame, hangs up (``DELETE`` and closing
the peer connection), and waits until the server has released the slot
(``/metrics``). After each session the server's resident memory and open
descriptors are read from /proc.

Verdict: memory grew if a line fitted to RSS over the second half of the
sessions rises more than ``RSS_LIMIT_MB_PER_100`` per 100 sessions (the first
half includes the allocator's and runtimes' warm-up); descriptors leaked if
more are open after the last session than after the first.
"""

import argparse
import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from bench.e2e import add_server_arguments
from bench.models import generator_source, model_setup
from bench.plots import new_figure, save
from bench.report import Report, Target
from bench.server_process import ServerProcess, running_server, server_arguments
from bench.speech import looped_speech
from bench.webrtc_peer import PacedMicrophone
from engine.backends.model_files import cache_dir

NAME = "churn"
SUMMARY = "WebRTC sessions opened and closed in turn: server RSS and descriptors per session (leaks)"
RSS_LIMIT_MB_PER_100 = 5.0
"""RSS growth over the second half, fitted, above which memory counts as leaking (MiB per 100 sessions)."""
SESSION_TIMEOUT_S = 30.0


def add_arguments(parser: argparse.ArgumentParser, *, smoke: bool) -> None:
    parser.add_argument(
        "--sessions", type=int, default=6 if smoke else 200, help="sessions opened and closed (default: %(default)s)"
    )
    parser.add_argument(
        "--hold",
        type=float,
        default=0.5 if smoke else 2.0,
        help="seconds each session receives video before it hangs up (default: %(default)s)",
    )
    add_server_arguments(parser, smoke=smoke)


def run(args: argparse.Namespace) -> Report:
    if args.sessions < 4:
        raise ValueError("--sessions must be at least 4 (the fit uses the second half)")
    generator = generator_source(args.width, cache_dir() / "bench")
    setup = model_setup(args.backend, generator, precision=args.precision, threads=args.threads, streams=args.streams)
    arguments = server_arguments(setup, generator, size_px=args.size, fps=args.fps, max_sessions=2)
    audio = looped_speech(args.hold + 10.0)
    print(f"churn: starting avatar serve {' '.join(arguments)} ...", flush=True)
    with running_server(arguments) as server:
        samples = asyncio.run(_churn(server, audio, args.sessions, args.hold))
    rss = np.asarray([s["rss_mb"] for s in samples])
    fds = [s["fds"] for s in samples]
    half = len(samples) // 2
    slope_per_100 = float(np.polyfit(np.arange(half, len(samples)), rss[half:], 1)[0] * 100)
    results: dict[str, Any] = {
        "sessions": len(samples),
        "rss_mb": {"first": float(rss[0]), "middle": float(rss[half]), "last": float(rss[-1]), "max": float(rss.max())},
        "rss_slope_mb_per_100_sessions": slope_per_100,
        "fds": {"first": fds[0], "last": fds[-1], "max": max(fds)},
        "session_s": [s["session_s"] for s in samples],
        "series": samples,
    }
    leaked_fds = fds[-1] - fds[0]
    targets = [
        Target(
            "RSS growth over the second half",
            f"<= {RSS_LIMIT_MB_PER_100:g} MiB per 100 sessions",
            slope_per_100,
            slope_per_100 <= RSS_LIMIT_MB_PER_100,
        ),
        Target(
            "descriptors left open after the last session",
            "<= 0 more than after the first",
            leaked_fds,
            leaked_fds <= 0,
        ),
    ]
    rows = [
        ["server RSS, MiB", results["rss_mb"]["first"], results["rss_mb"]["middle"], results["rss_mb"]["last"]],
        ["open descriptors", fds[0], fds[half], fds[-1]],
    ]
    return Report(
        scenario=NAME,
        smoke=args.smoke,
        config={"sessions": args.sessions, "hold_s": args.hold, "size_px": args.size, "fps": args.fps},
        setup=setup.as_dict(),
        results=results,
        headers=["after session", "first", f"#{half + 1}", f"#{len(samples)}"],
        rows=rows,
        targets=targets,
        plot=lambda path: _plot(samples, path),
    )


async def _churn(server: ServerProcess, audio: np.ndarray, sessions: int, hold_s: float) -> list[dict[str, Any]]:
    samples = []
    async with aiohttp.ClientSession() as http:
        for index in range(sessions):
            start_s = time.perf_counter()
            await asyncio.wait_for(_one_session(http, server.base_url, audio, hold_s), SESSION_TIMEOUT_S)
            await _until_idle(http, server.base_url)
            samples.append(
                {
                    "session": index + 1,
                    "session_s": round(time.perf_counter() - start_s, 3),
                    "rss_mb": server.rss_mb(),
                    "fds": server.open_descriptors(),
                }
            )
            if (index + 1) % 20 == 0 or index + 1 == sessions:
                print(f"churn: {index + 1} sessions, server RSS {samples[-1]['rss_mb']:.0f} MiB", flush=True)
    return samples


async def _one_session(http: aiohttp.ClientSession, base_url: str, audio: np.ndarray, hold_s: float) -> None:
    """Offer, receive video for ``hold_s`` after the first frame, DELETE and close: the page's Start and Stop."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(PacedMicrophone(audio))
    pc.addTransceiver("video", direction="recvonly")
    first_frame = asyncio.Event()
    readers: list[asyncio.Task[None]] = []

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        readers.append(asyncio.create_task(_read(track, first_frame)))

    try:
        await pc.setLocalDescription(await pc.createOffer())
        body = {"sdp": pc.localDescription.sdp, "type": "offer"}
        async with http.post(f"{base_url}/offer", json=body) as response:
            if response.status != 200:
                raise RuntimeError(f"the server refused the offer: {response.status} {await response.text()}")
            answer = await response.json()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))
        await first_frame.wait()
        await asyncio.sleep(hold_s)
        async with http.delete(f"{base_url}{answer['location']}") as response:
            await response.read()
    finally:
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await pc.close()


async def _read(track: MediaStreamTrack, first_frame: asyncio.Event) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            await track.recv()
            if track.kind == "video":
                first_frame.set()


async def _until_idle(http: aiohttp.ClientSession, base_url: str) -> None:
    """Wait until the server reports no live session (its slot released, its peer connection closed)."""
    deadline_s = time.perf_counter() + SESSION_TIMEOUT_S
    while time.perf_counter() < deadline_s:
        async with http.get(f"{base_url}/metrics") as response:
            text = await response.text()
        live = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("avatar_sessions{"))
        if live == 0:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the server still had a live session {SESSION_TIMEOUT_S:g} s after a hang-up")


def _plot(samples: list[dict[str, Any]], path: Path) -> None:
    figure = new_figure(8, 5)
    rss_axes = figure.add_subplot(2, 1, 1)
    rss_axes.plot([s["session"] for s in samples], [s["rss_mb"] for s in samples], ".-", markersize=3)
    rss_axes.set_ylabel("server RSS, MiB")
    fd_axes = figure.add_subplot(2, 1, 2, sharex=rss_axes)
    fd_axes.plot([s["session"] for s in samples], [s["fds"] for s in samples], ".-", markersize=3)
    fd_axes.set_ylabel("open descriptors")
    fd_axes.set_xlabel("sessions opened and closed")
    save(figure, path)
