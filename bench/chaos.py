"""``chaos``: honest sessions keep their pace while misbehaving clients attack the server.

``avatar serve`` runs in its own process (``bench/server_process.py``), with
tokens on (``--auth on``: the attackers hold a valid token, the worst case,
except the ``no_token`` and ``cross_origin`` kinds). This process runs:

- ``--honest`` WebSocket sessions streaming the speech sample at real-time
  pace in 20 ms messages, each from its own loopback address (127.0.0.2, ...),
  receiving AU records; per record, latency = its arrival minus the time the
  message holding the audio instant it shows was sent (the mel window and
  the lookahead included: compare quiet and attack, not absolute values);
- first ``--quiet`` seconds with nobody else (the quiet figures), then
  ``--attack`` seconds with every kind of attacker in :data:`ATTACKS` running
  at once, each from its own loopback address, each reconnecting whenever the
  server cuts it off.

Measured: the honest sessions' records per second (per 1 s bin), latency
p50/p95 quiet vs under attack, late records (latency over twice the quiet
p95); per attack kind, attempts, how many were refused or cut off, the
longest a misbehaving client held a session slot, any 5xx answer; the
server's RSS and open descriptors (/proc) every second; its own refusal
counters (``/metrics``); and, at the end, SIGTERM to exit.
"""

import argparse
import asyncio
import contextlib
import gc
import json
import multiprocessing
import os
import signal
import socket
import struct
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from aiortc import AudioStreamTrack, RTCConfiguration, RTCPeerConnection

from avatar_protocol import FrameRecord, parse_server_message
from bench.e2e import add_server_arguments
from bench.models import generator_source, model_setup
from bench.plots import new_figure, save
from bench.report import Report, Target, percentiles
from bench.server_process import ServerProcess, running_server, server_arguments
from bench.speech import looped_speech
from engine.audio import SAMPLE_RATE_HZ
from engine.backends.model_files import cache_dir

NAME = "chaos"
SUMMARY = "honest sessions' fps and latency while misbehaving clients attack the server; RSS, descriptors, refusals"
CHUNK_SAMPLES = 320
"""20 ms of 16 kHz audio per honest message."""
MIN_FPS = 24.0
P95_RATIO = 1.5
MAX_SLOT_HOLD_S = 15.0
LEGAL_KINDS = ("fast_sender",)
"""Attackers that follow the protocol: they are slowed (paced to --max-audio-speed), not evicted, so the slot
they hold is theirs; the longest-hold target leaves them out."""
SIGTERM_EXIT_S = 2.0
RSS_GROWTH_LIMIT_MB = 10.0
"""RSS growth over the second half of the attack (a line fitted, MiB) above this counts as growth; the first half
holds the first allocations of every kind of client (~40 MiB in the first seconds here)."""
TOKEN = "chaos-bench-token-" + "0" * 16
METRICS_TOKEN = "chaos-bench-metrics-" + "0" * 16


def add_arguments(parser: argparse.ArgumentParser, *, smoke: bool) -> None:
    parser.add_argument("--honest", type=int, default=1 if smoke else 3, help="honest sessions (default: %(default)s)")
    parser.add_argument(
        "--quiet", type=float, default=3.0 if smoke else 20.0, help="seconds before the attack (default: %(default)s)"
    )
    parser.add_argument(
        "--attack", type=float, default=6.0 if smoke else 180.0, help="seconds of attack (default: %(default)s)"
    )
    parser.add_argument(
        "--attacks",
        nargs="+",
        choices=sorted(ATTACKS),
        default=list(ATTACKS),
        metavar="KIND",
        help=f"the kinds of attacker to run (default: all: {', '.join(ATTACKS)})",
    )
    add_server_arguments(parser, smoke=smoke)


@dataclass
class AttackStats:
    """What one kind of attacker did and met."""

    attempts: int = 0
    refused: int = 0
    """Refused at once (HTTP 4xx, 429, 503; a WebSocket error before a session) or cut off later."""
    server_errors: int = 0
    """5xx answers, or a WebSocket internal_error: each one is a bug."""
    max_held_s: float = 0.0
    """The longest a session slot (or a connection, for those that never get one) stayed with it, seconds."""

    def held(self, seconds: float) -> None:
        self.max_held_s = max(self.max_held_s, seconds)


@dataclass
class HonestSession:
    address: str
    sent_s: list[float] = field(default_factory=list)
    """Send time of each 20 ms message, in order."""
    records: list[tuple[float, float, float]] = field(default_factory=list)
    """(arrival time, latency ms, the server's own latency ms: last audio in -> record built) of each record."""
    error: str | None = None


@dataclass
class Chaos:
    base_url: str
    speech: np.ndarray
    offer_sdp: str
    """A real offer (aiortc's), sent again and again by ``offer_no_ice``."""
    stop_s: float = 0.0
    stats: dict[str, AttackStats] = field(default_factory=dict)

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/ws"

    def running(self) -> bool:
        return time.perf_counter() < self.stop_s


def run(args: argparse.Namespace) -> Report:
    generator = generator_source(args.width, cache_dir() / "bench")
    setup = model_setup(args.backend, generator, precision=args.precision, threads=args.threads, streams=args.streams)
    arguments = server_arguments(setup, generator, size_px=args.size, fps=args.fps, max_sessions=args.honest + 2)
    with tempfile.TemporaryDirectory() as folder:
        token_file, metrics_file = Path(folder) / "token", Path(folder) / "metrics"
        token_file.write_text(TOKEN)
        metrics_file.write_text(METRICS_TOKEN)
        arguments += ["--auth", "on", "--token-file", str(token_file), "--metrics-token-file", str(metrics_file)]
        print(f"chaos: starting avatar serve {' '.join(arguments)} ...", flush=True)
        with running_server(arguments) as server:
            outcome = asyncio.run(_run(server, args))
            exit_s, returncode = _sigterm(server)
    return _report(args, setup.as_dict(), outcome, exit_s, returncode)


async def _run(server: ServerProcess, args: argparse.Namespace) -> dict[str, Any]:
    chaos = Chaos(server.base_url, looped_speech(args.quiet + args.attack + 5.0), await _offer_sdp())
    honest = [HonestSession(f"127.0.0.{2 + i}") for i in range(args.honest)]
    memory: list[tuple[float, float, int]] = []
    cpu: dict[str, tuple[float, float, float]] = {}
    """phase -> (server CPU seconds, this process's CPU seconds, wall seconds)."""

    def cpu_now() -> tuple[float, float, float]:
        return server.cpu_s(), time.process_time(), time.perf_counter()

    async def sample_memory(until_s: float) -> None:
        while time.perf_counter() < until_s:
            memory.append((time.perf_counter() - started_s, server.rss_mb(), server.open_descriptors()))
            await asyncio.sleep(1.0)

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    # The honest clients run in a process of their own: the attackers' work on this event loop must not delay
    # the honest records' arrival times.
    process = context.Process(
        target=_honest_process, args=(chaos.ws_url, chaos.speech, honest, args.quiet + args.attack + 1.0, queue)
    )
    process.start()
    try:
        kind, ready_s = await asyncio.to_thread(queue.get, True, 120)
        if kind != "ready":
            raise RuntimeError(f"the honest sessions could not start: {ready_s}")
        started_s = ready_s
        attack_start_s = started_s + args.quiet
        attack_end_s = attack_start_s + args.attack
        chaos.stop_s = attack_end_s
        sampler = asyncio.create_task(sample_memory(attack_end_s + 1.0))
        quiet_cpu = cpu_now()
        await asyncio.sleep(max(0.0, attack_start_s - time.perf_counter()))
        attack_cpu = cpu_now()
        cpu["quiet"] = tuple(b - a for a, b in zip(quiet_cpu, attack_cpu))  # type: ignore[assignment]
        kinds = {name: ATTACKS[name] for name in args.attacks}
        print(f"chaos: attack for {args.attack:g} s by {', '.join(kinds)} ...", flush=True)
        attackers = [
            asyncio.create_task(_repeat(chaos, name, attack, index))
            for index, (name, attack) in enumerate(kinds.items())
        ]
        await asyncio.gather(*attackers)
        cpu["attack"] = tuple(b - a for a, b in zip(attack_cpu, cpu_now()))  # type: ignore[assignment]
        await sampler
        kind, honest = await asyncio.to_thread(queue.get, True, 60)
    finally:
        process.join(10)
        if process.is_alive():
            process.kill()
    refusals = await _server_refusals(chaos.base_url)
    return {
        "honest": honest,
        "stats": chaos.stats,
        "memory": memory,
        "started_s": started_s,
        "attack_start_s": attack_start_s,
        "attack_end_s": attack_end_s,
        "server_refusals": refusals,
        "cpu": cpu,
    }


# ---------------------------------------------------------------- the honest sessions


def _honest_process(ws_url: str, speech: np.ndarray, sessions: list[HonestSession], seconds: float, queue: Any) -> None:
    """Every honest session, in this (separate) process: ("ready", time) once all are, then ("done", sessions).

    What the imports loaded is frozen out of the garbage collector's sight: a full collection over it took
    100-270 ms here, a stall of the client that would be counted as the server's latency.
    """
    gc.freeze()

    async def all_sessions() -> None:
        chaos = Chaos(ws_url.removesuffix("/ws").replace("ws://", "http://"), speech, "")
        until: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        ready = 0

        def on_ready() -> None:
            nonlocal ready
            ready += 1
            if ready == len(sessions):
                now = time.perf_counter()
                until.set_result(now + seconds)
                queue.put(("ready", now))

        runs = asyncio.gather(*(_honest(chaos, session, until, on_ready) for session in sessions))
        try:
            await asyncio.wait_for(asyncio.shield(until), 60)
        except TimeoutError:
            queue.put(("failed", [s.error for s in sessions]))
        await runs

    asyncio.run(all_sessions())
    queue.put(("done", sessions))


async def _honest(
    chaos: Chaos, session: HonestSession, until: "asyncio.Future[float]", on_ready: Callable[[], None]
) -> None:
    """A real-time WebSocket session until ``until`` (set once every session is ready): 20 ms out, records in."""
    connector = aiohttp.TCPConnector(local_addr=(session.address, 0))
    hello = json.dumps({"type": "hello", "version": 2})
    pcm = (np.clip(chaos.speech, -1, 1) * 32767).astype("<i2")
    try:
        async with aiohttp.ClientSession(connector=connector) as http:
            async with http.ws_connect(f"{chaos.ws_url}?token={TOKEN}", max_msg_size=0) as ws:
                await ws.send_str(hello)
                ready = await ws.receive(timeout=10)
                if ready.type is not aiohttp.WSMsgType.TEXT or json.loads(ready.data)["type"] != "ready":
                    raise RuntimeError(f"no ready: {ready.data!r}")
                on_ready()

                async def send() -> None:
                    start_s = time.perf_counter()
                    for index in range(len(pcm) // CHUNK_SAMPLES):
                        due_s = start_s + index * CHUNK_SAMPLES / SAMPLE_RATE_HZ
                        if until.done() and due_s > until.result():
                            break
                        await asyncio.sleep(max(0.0, due_s - time.perf_counter()))
                        session.sent_s.append(time.perf_counter())
                        await ws.send_bytes(pcm[index * CHUNK_SAMPLES : (index + 1) * CHUNK_SAMPLES].tobytes())
                    await ws.send_str('{"type": "end"}')

                sender = asyncio.create_task(send())
                async for message in ws:
                    if message.type is not aiohttp.WSMsgType.BINARY:
                        if message.type is aiohttp.WSMsgType.TEXT and json.loads(message.data)["type"] == "error":
                            session.error = message.data
                        continue
                    record = parse_server_message(message.data)
                    if isinstance(record, FrameRecord):
                        now = time.perf_counter()
                        sent = session.sent_s[min(record.audio_sample // CHUNK_SAMPLES, len(session.sent_s) - 1)]
                        session.records.append((now, (now - sent) * 1e3, record.server_latency_us / 1e3))
                await sender
    except (aiohttp.ClientError, RuntimeError, TimeoutError) as exc:
        session.error = session.error or f"{type(exc).__name__}: {exc}"


# ---------------------------------------------------------------- the attackers


Attack = Callable[[Chaos, str, AttackStats], Awaitable[None]]


async def _repeat(chaos: Chaos, name: str, attack: Attack, index: int) -> None:
    """Run ``attack`` again and again from its own address until the attack phase ends."""
    stats = chaos.stats.setdefault(name, AttackStats())
    address = f"127.0.1.{10 + index}"
    while chaos.running():
        stats.attempts += 1
        try:
            async with asyncio.timeout(max(0.1, chaos.stop_s - time.perf_counter())):
                await attack(chaos, address, stats)
        except TimeoutError:
            pass
        except (OSError, aiohttp.ClientError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            stats.refused += 1  # the server closed or reset the connection under it
        await asyncio.sleep(0.05)


def _http(address: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0), force_close=True))


async def _hello_session(
    chaos: Chaos, address: str, stats: AttackStats, hello: dict[str, Any], act: Callable[[Any], Awaitable[None]]
) -> None:
    """Open a session with a valid token and hello, then ``act(ws)``; count how it ended and how long it held."""
    async with _http(address) as http, http.ws_connect(f"{chaos.ws_url}?token={TOKEN}", max_msg_size=0) as ws:
        await ws.send_str(json.dumps({"type": "hello", "version": 2, **hello}))
        first = await ws.receive(timeout=10)
        if first.type is not aiohttp.WSMsgType.TEXT or json.loads(first.data)["type"] != "ready":
            _count_end(stats, first)
            return
        start_s = time.perf_counter()
        try:
            await act(ws)
        finally:
            stats.held(time.perf_counter() - start_s)


def _count_end(stats: AttackStats, message: aiohttp.WSMessage) -> None:
    stats.refused += 1
    if message.type is aiohttp.WSMsgType.TEXT and '"internal_error"' in message.data:
        stats.server_errors += 1


async def _until_closed(ws: aiohttp.ClientWebSocketResponse, stats: AttackStats) -> None:
    async for message in ws:
        if message.type is aiohttp.WSMsgType.TEXT and '"error"' in message.data:
            _count_end(stats, message)
            return
    stats.refused += 1


async def slow_reader(chaos: Chaos, address: str, stats: AttackStats) -> None:
    """Asks for pictures, sends audio fast, never reads (a tiny receive window)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.bind((address, 0))
    sock.setblocking(False)
    host, port = chaos.base_url.removeprefix("http://").split(":")
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    reader, writer = await asyncio.open_connection(sock=sock)
    start_s = time.perf_counter()
    try:
        writer.write(_upgrade(host, port))
        await reader.readuntil(b"\r\n\r\n")
        writer.write(_ws_frame(0x1, json.dumps({"type": "hello", "version": 2, "outputs": ["aus", "frames"]}).encode()))
        audio = (np.clip(chaos.speech[:SAMPLE_RATE_HZ], -1, 1) * 32767).astype("<i2").tobytes()
        while chaos.running():
            writer.write(_ws_frame(0x2, audio[:3200]))
            async with asyncio.timeout(5):
                await writer.drain()
            await asyncio.sleep(0.025)  # 100 ms of audio every 25 ms: 4x real time
            if writer.transport.is_closing() or reader.at_eof():
                break
    except (ConnectionError, TimeoutError):
        pass
    finally:
        stats.held(time.perf_counter() - start_s)
        stats.refused += 1
        writer.transport.abort()


async def ping_flood(chaos: Chaos, address: str, stats: AttackStats) -> None:
    """Pings as fast as the socket takes them, no hello."""
    host, port = chaos.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port), local_addr=(address, 0))
    try:
        writer.write(_upgrade(host, port))
        await reader.readuntil(b"\r\n\r\n")
        burst = _ws_frame(0x9, b"") * 5000
        start_s = time.perf_counter()
        while chaos.running() and not reader.at_eof() and not writer.transport.is_closing():
            writer.write(burst)
            async with asyncio.timeout(5):
                await writer.drain()
            await asyncio.sleep(0.01)
        stats.held(time.perf_counter() - start_s)
    except (ConnectionError, TimeoutError):
        stats.refused += 1
    finally:
        writer.transport.abort()


async def message_flood(chaos: Chaos, address: str, stats: AttackStats) -> None:
    """A session, then a flood of 2-byte audio messages."""

    async def act(ws: Any) -> None:
        while chaos.running() and not ws.closed:
            for _ in range(100):
                await ws.send_bytes(b"\0\0")
            await asyncio.sleep(0)
        stats.refused += 1

    with contextlib.suppress(ConnectionError):
        await _hello_session(chaos, address, stats, {}, act)


async def no_hello(chaos: Chaos, address: str, stats: AttackStats) -> None:
    """Ten WebSocket connections at once that never say hello."""

    async def one() -> None:
        async with _http(address) as http:
            try:
                async with http.ws_connect(f"{chaos.ws_url}?token={TOKEN}") as ws:
                    start_s = time.perf_counter()
                    await _until_closed(ws, stats)
                    stats.held(time.perf_counter() - start_s)
            except aiohttp.WSServerHandshakeError:
                stats.refused += 1

    await asyncio.gather(*(one() for _ in range(10)), return_exceptions=True)


async def slow_headers(chaos: Chaos, address: str, stats: AttackStats) -> None:
    """Request headers one byte a second (slowloris)."""
    host, port = chaos.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port), local_addr=(address, 0))
    start_s = time.perf_counter()
    try:
        writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\nX-Slow: ".encode())
        while chaos.running():
            writer.write(b"a")
            await writer.drain()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    answer = await reader.read(1)
                if answer == b"":
                    break
    except ConnectionError:
        pass
    finally:
        stats.held(time.perf_counter() - start_s)
        stats.refused += 1
        writer.transport.abort()


async def slow_body(chaos: Chaos, address: str, stats: AttackStats) -> None:
    """A POST /offer whose body trickles in a byte a second."""
    host, port = chaos.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port), local_addr=(address, 0))
    start_s = time.perf_counter()
    try:
        writer.write(
            f"POST /offer HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{".encode()
        )
        while chaos.running():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    head = await reader.read(64)
                if head:
                    _count_status(stats, head)
                    break
            writer.write(b" ")
            await writer.drain()
    except ConnectionError:
        stats.refused += 1
    finally:
        stats.held(time.perf_counter() - start_s)
        writer.transport.abort()


def _count_status(stats: AttackStats, head: bytes) -> None:
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else 0
    if status >= 400:
        stats.refused += 1
    if status >= 500 and status != 503:
        stats.server_errors += 1


async def offer_no_ice(chaos: Chaos, address: str, stats: AttackStats) -> None:
    """Real offers whose answers are never used: no ICE, no DTLS."""
    async with _http(address) as http:
        body = {"sdp": chaos.offer_sdp, "type": "offer"}
        async with http.post(f"{chaos.base_url}/offer", json=body, headers=_auth()) as response:
            if response.status != 200:
                _count_status(stats, f"HTTP/1.1 {response.status} x".encode())
                return
            location = (await response.json())["location"]
        del location  # never used: a client that never connects
        start_s = time.perf_counter()
        while chaos.running() and await _webrtc_sessions(http, chaos.base_url) > 0:  # only this kind makes them
            await asyncio.sleep(0.25)
        stats.held(time.perf_counter() - start_s)
        stats.refused += 1


async def keep_alive(chaos: Chaos, address: str, stats: AttackStats) -> None:
    """A session kept with an empty message now and then, no audio."""

    async def act(ws: Any) -> None:
        while chaos.running() and not ws.closed:
            await ws.send_bytes(b"")
            with contextlib.suppress(TimeoutError):
                message = await ws.receive(timeout=1.0)
                if message.type is not aiohttp.WSMsgType.BINARY:
                    _count_end(stats, message)
                    return

    with contextlib.suppress(ConnectionError):
        await _hello_session(chaos, address, stats, {}, act)


async def fast_sender(chaos: Chaos, address: str, stats: AttackStats) -> None:
    """Protocol-legal, but as fast as it can: 512 KiB audio messages, records read."""
    audio = (np.clip(np.resize(chaos.speech, 256 * 1024), -1, 1) * 32767).astype("<i2").tobytes()

    async def act(ws: Any) -> None:
        async def read() -> None:
            async for _ in ws:
                pass

        reader = asyncio.create_task(read())
        try:
            while chaos.running() and not ws.closed:
                await ws.send_bytes(audio)
        finally:
            reader.cancel()

    with contextlib.suppress(ConnectionError):
        await _hello_session(chaos, address, stats, {}, act)


async def vanishing(chaos: Chaos, address: str, stats: AttackStats) -> None:
    """A session that streams a second of audio, then drops the connection without a close (RST)."""
    host, port = chaos.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port), local_addr=(address, 0))
    writer.write(_upgrade(host, port))
    await reader.readuntil(b"\r\n\r\n")
    writer.write(_ws_frame(0x1, json.dumps({"type": "hello", "version": 2}).encode()))
    audio = (np.clip(chaos.speech[:SAMPLE_RATE_HZ], -1, 1) * 32767).astype("<i2").tobytes()
    for start in range(0, len(audio), 640):
        writer.write(_ws_frame(0x2, audio[start : start + 640]))
        await asyncio.sleep(0.02)
    writer.transport.abort()


async def garbage(chaos: Chaos, address: str, stats: AttackStats) -> None:
    """Bad hellos, bad SDP, bad paths, deep JSON: every answer must be a 4xx or a protocol error."""
    bad_hellos = ['{"type": "hello", "version": 2, "sample_format": ["s16le"]}', "[" * 50_000, "hello", "{}"]
    async with _http(address) as http:
        for text in bad_hellos:
            async with http.ws_connect(f"{chaos.ws_url}?token={TOKEN}", max_msg_size=0) as ws:
                await ws.send_str(text)
                _count_end(stats, await ws.receive(timeout=10))
        for method, path, body in (
            ("GET", "/app.js%00", None),
            ("GET", "/" + "a" * 8000, None),
            ("GET", "/offer", None),
            ("POST", "/offer", "[" * 100_000),
            ("POST", "/offer", json.dumps({"sdp": "v=0\r\nm=audio x\r\n", "type": "offer"})),
        ):
            async with http.request(method, chaos.base_url + path, data=body, headers=_auth()) as response:
                _count_status(stats, f"HTTP/1.1 {response.status} x".encode())


async def no_token(chaos: Chaos, address: str, stats: AttackStats) -> None:
    """Sessions tried without a token, with a wrong one, and an expired-looking JWT."""
    async with _http(address) as http:
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": "Bearer a.b.c"}):
            async with http.get(f"{chaos.base_url}/ws", headers=headers) as response:
                _count_status(stats, f"HTTP/1.1 {response.status} x".encode())


async def cross_origin(chaos: Chaos, address: str, stats: AttackStats) -> None:
    """A page on another site (Origin) and a rebound name (Host), with a valid token."""
    async with _http(address) as http:
        for headers in ({"Origin": "http://attacker.example"}, {"Host": "attacker.example"}):
            async with http.get(f"{chaos.base_url}/ws", headers={**headers, **_auth()}) as response:
                _count_status(stats, f"HTTP/1.1 {response.status} x".encode())


ATTACKS: dict[str, Attack] = {
    "slow_reader": slow_reader,
    "ping_flood": ping_flood,
    "message_flood": message_flood,
    "no_hello": no_hello,
    "slow_headers": slow_headers,
    "slow_body": slow_body,
    "offer_no_ice": offer_no_ice,
    "keep_alive": keep_alive,
    "fast_sender": fast_sender,
    "vanishing": vanishing,
    "garbage": garbage,
    "no_token": no_token,
    "cross_origin": cross_origin,
}


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def _upgrade(host: str, port: str) -> bytes:
    return (
        f"GET /ws?token={TOKEN} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def _ws_frame(opcode: int, payload: bytes) -> bytes:
    """One client frame with a zero mask (the payload goes as is)."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    return header + b"\0\0\0\0" + payload


async def _offer_sdp() -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(AudioStreamTrack())
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp: str = pc.localDescription.sdp
    await pc.close()
    return sdp


async def _webrtc_sessions(http: aiohttp.ClientSession, base_url: str) -> float:
    headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    async with http.get(f"{base_url}/metrics", headers=headers) as response:
        text = await response.text()
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith('avatar_sessions{kind="webrtc"')
    )


async def _server_refusals(base_url: str) -> dict[str, float]:
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        async with http.get(f"{base_url}/metrics", headers=headers) as response:
            text = await response.text()
    refusals = {}
    for line in text.splitlines():
        if line.startswith('avatar_refused_total{kind="'):
            kind = line.split('"')[1]
            refusals[kind] = float(line.rsplit(" ", 1)[1])
    return refusals


def _sigterm(server: ServerProcess) -> tuple[float, int]:
    """SIGTERM to the server; seconds until it exited, and its exit status."""
    start_s = time.perf_counter()
    os.kill(server.pid, signal.SIGTERM)
    returncode = server.process.wait(timeout=30)
    return time.perf_counter() - start_s, returncode


# ---------------------------------------------------------------- the report


def _report(
    args: argparse.Namespace, setup: dict[str, Any], outcome: dict[str, Any], exit_s: float, returncode: int
) -> Report:
    honest: list[HonestSession] = outcome["honest"]
    attack_start, attack_end = outcome["attack_start_s"], outcome["attack_end_s"]
    quiet_start = outcome["started_s"] + 1.0  # the first second: connecting
    phases = {"quiet": (quiet_start, attack_start), "attack": (attack_start + 0.5, attack_end)}
    per_phase: dict[str, dict[str, Any]] = {}
    for phase, (start, end) in phases.items():
        latencies = [ms for s in honest for t, ms, _ in s.records if start <= t < end]
        server_latencies = [ms for s in honest for t, _, ms in s.records if start <= t < end]
        fps = [_fps_bins(s, start, end) for s in honest]
        per_phase[phase] = {
            "latency_ms": percentiles(latencies),
            "server_latency_ms": percentiles(server_latencies),
            "fps_mean": float(np.mean([np.mean(f) for f in fps])) if fps and all(f for f in fps) else 0.0,
            "fps_min_bin": float(min((min(f) for f in fps if f), default=0.0)),
            "fps_worst_session": float(min((np.mean(f) for f in fps if f), default=0.0)),
        }
    quiet_p95 = per_phase["quiet"]["latency_ms"]["p95"] or 0.0
    attack_latencies = [ms for s in honest for t, ms, _ in s.records if phases["attack"][0] <= t < attack_end]
    late = sum(ms > 2 * quiet_p95 for ms in attack_latencies)
    memory = outcome["memory"]
    attack_from = attack_start - outcome["started_s"]
    half = [(t, mb) for t, mb, _ in memory if t >= attack_from + (attack_end - attack_start) / 2]
    rss_growth = (
        float(np.polyfit([t for t, _ in half], [mb for _, mb in half], 1)[0] * (half[-1][0] - half[0][0]))
        if len(half) >= 3
        else None
    )
    stats: dict[str, AttackStats] = outcome["stats"]
    results: dict[str, Any] = {
        "honest_sessions": len(honest),
        "honest_errors": [s.error for s in honest if s.error],
        "phases": per_phase,
        "late_records": late,
        "late_rate": late / max(1, len(attack_latencies)),
        "attacks": {name: vars(s) for name, s in stats.items()},
        "server_refusals": outcome["server_refusals"],
        "rss_mb": {"series": [[round(t, 1), round(mb, 1)] for t, mb, _ in memory], "second_half_growth": rss_growth},
        "fds": {"series": [[round(t, 1), n] for t, _, n in memory], "max": max((n for *_, n in memory), default=None)},
        "cpu_percent": {
            phase: {"server": 100 * server_s / wall_s, "attackers": 100 * own_s / wall_s}
            for phase, (server_s, own_s, wall_s) in outcome["cpu"].items()
        },
        "sigterm_exit_s": exit_s,
        "sigterm_returncode": returncode,
    }
    worst_fps = per_phase["attack"]["fps_worst_session"]
    p95_ratio = (per_phase["attack"]["latency_ms"]["p95"] or 0.0) / quiet_p95 if quiet_p95 else None
    max_held = max((s.max_held_s for name, s in stats.items() if name not in LEGAL_KINDS), default=0.0)
    server_errors = sum(s.server_errors for s in stats.values())
    targets = [
        Target("honest records/s under attack (worst session)", f">= {MIN_FPS:g}", worst_fps, worst_fps >= MIN_FPS),
        Target(
            "honest p95 latency, attack / quiet",
            f"<= {P95_RATIO:g}",
            p95_ratio,
            None if p95_ratio is None else p95_ratio <= P95_RATIO,
        ),
        Target(
            "longest slot or connection held by a misbehaving client",
            f"<= {MAX_SLOT_HOLD_S:g} s",
            max_held,
            max_held <= MAX_SLOT_HOLD_S,
        ),  # fmt: skip
        Target("5xx answers or internal errors met by attackers", "0", server_errors, server_errors == 0),
        Target(
            "server RSS growth over the attack's second half",
            f"<= {RSS_GROWTH_LIMIT_MB:g} MiB",
            rss_growth,
            None if rss_growth is None else rss_growth <= RSS_GROWTH_LIMIT_MB,
        ),  # fmt: skip
        Target(
            "SIGTERM to exit",
            f"<= {SIGTERM_EXIT_S:g} s, status 0",
            exit_s,
            exit_s <= SIGTERM_EXIT_S and returncode == 0,
        ),  # fmt: skip
    ]
    rows: list[list[Any]] = [
        [name, s.attempts, s.refused, round(s.max_held_s, 1), s.server_errors] for name, s in stats.items()
    ]
    rows.append(["-- honest (quiet -> attack)", None, None, None, None])
    for label, key in (("records/s, mean", "fps_mean"), ("records/s, worst 1 s bin", "fps_min_bin")):
        rows.append([f"  {label}", per_phase["quiet"][key], per_phase["attack"][key], None, None])
    cpu_percent = results["cpu_percent"]
    rows.append(["  server CPU, % of one core", cpu_percent["quiet"]["server"], cpu_percent["attack"]["server"], None,
                 None])  # fmt: skip
    rows.append(["  attack clients' CPU, %", cpu_percent["quiet"]["attackers"], cpu_percent["attack"]["attackers"],
                 None, None])  # fmt: skip
    for q in ("p50", "p95"):
        rows.append([f"  latency {q}, ms", per_phase["quiet"]["latency_ms"][q], per_phase["attack"]["latency_ms"][q],
                     None, None])  # fmt: skip
        rows.append([f"  of which in the server, {q}", per_phase["quiet"]["server_latency_ms"][q],
                     per_phase["attack"]["server_latency_ms"][q], None, None])  # fmt: skip
    return Report(
        scenario=NAME,
        smoke=args.smoke,
        config={
            "honest": args.honest,
            "quiet_s": args.quiet,
            "attack_s": args.attack,
            "size_px": args.size,
            "fps": args.fps,
            "attacks": list(ATTACKS),
        },  # fmt: skip
        setup=setup,
        results=results,
        headers=["attacker / honest measure", "attempts / quiet", "refused or cut / attack", "max held s", "5xx"],
        rows=rows,
        targets=targets,
        plot=lambda path: _plot(outcome, path),
    )


def _fps_bins(session: HonestSession, start_s: float, end_s: float) -> list[float]:
    """Records per second of ``session`` in each whole second between ``start_s`` and ``end_s``."""
    edges = np.arange(start_s, end_s - 0.999, 1.0)
    times = np.asarray([t for t, *_ in session.records])
    return [float(((times >= e) & (times < e + 1.0)).sum()) for e in edges]


def _plot(outcome: dict[str, Any], path: Path) -> None:
    """Honest records per second and latency over time, the attack shaded; the server's RSS and descriptors."""
    started = outcome["started_s"]
    figure = new_figure(9, 8)
    fps_axes = figure.add_subplot(3, 1, 1)
    latency_axes = figure.add_subplot(3, 1, 2, sharex=fps_axes)
    for session in outcome["honest"]:
        if not session.records:
            continue
        times = np.asarray([t for t, *_ in session.records]) - started
        edges = np.arange(0.0, times.max(), 1.0)
        fps_axes.plot(edges, [((times >= e) & (times < e + 1)).sum() for e in edges], label=session.address)
        latency_axes.plot(times, [ms for _, ms, _ in session.records], ".", markersize=1.5, alpha=0.5)
    fps_axes.set_ylabel("honest records/s")
    fps_axes.legend(fontsize=7, loc="lower left")
    latency_axes.set_ylabel("latency, ms")
    memory_axes = figure.add_subplot(3, 1, 3, sharex=fps_axes)
    memory = outcome["memory"]
    memory_axes.plot([t for t, _, _ in memory], [mb for _, mb, _ in memory], label="RSS, MiB")
    descriptors = memory_axes.twinx()
    descriptors.plot([t for t, _, _ in memory], [n for *_, n in memory], color="grey", label="descriptors")
    memory_axes.set_ylabel("server RSS, MiB")
    descriptors.set_ylabel("open descriptors")
    memory_axes.set_xlabel("seconds since the honest sessions started")
    for axes in (fps_axes, latency_axes, memory_axes):
        axes.axvspan(outcome["attack_start_s"] - started, outcome["attack_end_s"] - started, color="red", alpha=0.08)
    save(figure, path)
