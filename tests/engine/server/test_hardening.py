"""Issue 13's failures, each reproduced against a real server on 127.0.0.1 (real sockets, real clients).

Every test names the numbered failure it covers; each failed before the
fix. Wall-clock checks use generous margins (a loaded 2-core machine).
"""

import asyncio
import json
import socket
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import numpy as np
import pytest
import pytest_asyncio

from avatar_client import FrameRecord, Hello, read_wav, stream
from engine.audio import SAMPLE_SPEECH
from engine.server.config import ServerConfig
from tests.engine.server.live_server import LiveServer, RawWebSocket, live_server

pytestmark = pytest.mark.asyncio(loop_scope="module")

HARDENED = {
    "session_idle_timeout_s": 3.0,
    "ice_timeout_s": 2.0,
    "write_timeout_s": 1.0,
    "header_timeout_s": 1.0,
    "body_timeout_s": 1.0,
    "max_pending_per_address": 3,
}
"""Short timeouts so that each failure shows within seconds."""


@pytest.fixture(scope="module")
def config(server_config: ServerConfig) -> ServerConfig:
    return replace(server_config, **HARDENED)  # type: ignore[arg-type]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(config: ServerConfig) -> AsyncIterator[LiveServer]:
    async with live_server(config) as running:
        yield running


@pytest_asyncio.fixture(autouse=True, loop_scope="module")
async def every_session_releases_its_slot(server: LiveServer) -> AsyncIterator[None]:
    yield
    await server.wait_until_idle(timeout_s=10.0)
    assert server.context.gate.pending.total == 0, server.context.gate.pending.by_address


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return read_wav(SAMPLE_SPEECH).samples


class RecordTimes:
    """Arrival times of a real-time session's frame records (perf_counter seconds)."""

    def __init__(self) -> None:
        self.times_s: list[float] = []

    def __call__(self, record: object) -> None:
        if isinstance(record, FrameRecord):
            self.times_s.append(time.perf_counter())

    def rate_between(self, start_s: float, end_s: float) -> float:
        inside = [t for t in self.times_s if start_s <= t <= end_s]
        return len(inside) / (end_s - start_s)

    def longest_gap_s(self, start_s: float, end_s: float) -> float:
        """The longest time without a record between ``start_s`` and ``end_s`` (the edges count)."""
        inside = [start_s, *(t for t in self.times_s if start_s <= t <= end_s), end_s]
        return float(np.diff(inside).max())


def hello(**fields: object) -> str:
    return json.dumps({"type": "hello", "version": 2, **fields})


def _frame(opcode: int, payload: bytes = b"") -> bytes:
    """One masked client frame with a zero mask (XOR by 0 leaves the payload as is)."""
    assert len(payload) < 126
    return struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload)) + b"\0\0\0\0" + payload


async def _closed_by_server(ws: RawWebSocket, timeout_s: float) -> bytes:
    """Read until the server closes the TCP connection; what it sent (ConnectionResetError counts as closed)."""
    received = b""
    try:
        async with asyncio.timeout(timeout_s):
            while chunk := await ws.reader.read(65536):
                received += chunk
    except ConnectionResetError:
        pass
    return received


# ---------------------------------------------------------------- 1. a client that stops reading


async def test_a_client_that_stops_reading_is_evicted(server: LiveServer, speech: np.ndarray) -> None:
    """Failure 1: a fast sender that never reads held its slot forever (the server blocked in send)."""
    config = server.context.config
    reader, writer = await _small_window_connection(server)
    ws = RawWebSocket(reader, writer)
    await _upgrade(ws, server)
    await ws.send(hello(outputs=["aus", "frames"], encoding="json"))
    start_s = time.perf_counter()
    evicted_s = None
    for start in range(0, 40 * 16_000, 1600):  # up to 40 s of audio in 100 ms messages, never reading
        chunk = speech[start % (speech.shape[0] - 1600) :][:1600]
        try:
            await asyncio.wait_for(ws.send(chunk.tobytes()), 5)
        except (TimeoutError, ConnectionError):
            pass
        if not server.context.slots.active:
            evicted_s = time.perf_counter() - start_s
            break
        await asyncio.sleep(0.01)
    writer.close()
    assert evicted_s is not None, "the client that never reads still holds its slot"
    assert server.context.gate.refusals["slow_reader"] >= 1
    print(f"non-reading client evicted {evicted_s:.1f} s after it started (write timeout {config.write_timeout_s} s)")


async def _small_window_connection(server: LiveServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP connection whose receive window is tiny, so that the server's writes back up within seconds."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (server.host, server.port))
    return await asyncio.open_connection(sock=sock)


async def _upgrade(ws: RawWebSocket, server: LiveServer, extra_headers: str = "") -> bytes:
    ws.writer.write(
        f"GET /ws HTTP/1.1\r\nHost: {server.host}:{server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra_headers}\r\n".encode()
    )
    status = await ws.reader.readuntil(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 101"), status
    return status


# ---------------------------------------------------------------- 2. a ping flood


async def test_a_ping_flood_is_cut_off_and_spares_a_live_session(server: LiveServer, speech: np.ndarray) -> None:
    """Failure 2: pings on a connection without a hello starved every session (25 -> 0-1 records/s)."""
    times = RecordTimes()
    healthy = asyncio.create_task(stream(server.ws_url, speech[: 6 * 16_000], Hello(), realtime=True, on_record=times))
    await asyncio.sleep(1.0)
    flood = await RawWebSocket.connect(server.host, server.port)
    flood_start_s = time.perf_counter()
    replies = asyncio.create_task(_closed_by_server(flood, 15))  # read all along: what the server says, then EOF
    burst = _frame(0x9) * 20_000
    sent_bursts = 0
    try:
        for _ in range(20):  # 400,000 pings over ~2 s unless the server cuts the connection first
            if replies.done():
                break
            flood.writer.write(burst)
            await flood.writer.drain()
            sent_bursts += 1
            await asyncio.sleep(0.1)
    except ConnectionError:
        pass
    received = await replies
    flood_end_s = time.perf_counter()
    result = await healthy
    # What the server said may be lost: closing a socket with unread data resets it (RST), as it should.
    del received
    assert sent_bursts < 20, "the server never cut the flooding connection"
    assert server.context.gate.refusals["rate_limited"] >= 1
    window_end_s = flood_start_s + 3.0  # the flood would go on for 2 s if not cut, starving the session
    while time.perf_counter() < window_end_s:
        await asyncio.sleep(0.1)
    rate = times.rate_between(flood_start_s, window_end_s)
    gap_s = times.longest_gap_s(flood_start_s, window_end_s)
    print(
        f"flood of {sent_bursts} x 20,000 pings cut after {flood_end_s - flood_start_s:.2f} s; "
        f"meanwhile the healthy session got {rate:.1f} records/s, longest gap {gap_s * 1e3:.0f} ms"
    )
    assert result.end is not None and len(result.frames) == result.end.frames
    assert rate >= 0.7 * 25 and gap_s < 1.5


async def test_too_many_messages_get_rate_limited(server: LiveServer) -> None:
    """Failure 2: there was no message-rate limit at all; over the rate, the connection ends with rate_limited."""
    ws = await RawWebSocket.connect(server.host, server.port)
    rate = server.context.config.max_messages_per_s
    ws.writer.write(_frame(0x9) * int(rate * 2))  # twice the burst a connection may send at once
    received = await _closed_by_server(ws, 10)
    assert b'"code": "rate_limited"' in received and b"pings and pongs" in received, received[-300:]
    assert struct.pack("!H", 1008) in received  # the close frame's code


# ---------------------------------------------------------------- 5. slowloris, bodies, clients leaving


async def test_a_request_whose_headers_never_end_is_closed(server: LiveServer) -> None:
    """Failure 5: partial request headers were held >= 150 s (no header read timeout)."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(f"GET / HTTP/1.1\r\nHost: {server.host}\r\nX-Slow: ".encode())
    await writer.drain()
    start_s = time.perf_counter()
    try:
        async with asyncio.timeout(server.context.config.header_timeout_s + 10):
            while True:
                writer.write(b"a")  # one byte a second keeps a naive server waiting forever
                await writer.drain()
                if await _eof_within(reader, 1.0):
                    break
    except ConnectionError:
        pass
    held_s = time.perf_counter() - start_s
    writer.close()
    print(f"slow headers closed after {held_s:.1f} s")
    assert held_s < server.context.config.header_timeout_s + 8


async def _eof_within(reader: asyncio.StreamReader, timeout_s: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1024), timeout_s) == b""
    except TimeoutError:
        return False


async def test_a_body_that_never_arrives_gets_408(server: LiveServer) -> None:
    """Failure 5: Content-Length 50000000 with 10 bytes sent was held >= 150 s."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(
        f"POST /offer HTTP/1.1\r\nHost: {server.host}\r\nContent-Type: application/json\r\n"
        'Content-Length: 100000\r\n\r\n{"sdp": "v'.encode()
    )
    await writer.drain()
    start_s = time.perf_counter()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), server.context.config.body_timeout_s + 10)
    waited_s = time.perf_counter() - start_s
    writer.close()
    assert head.startswith(b"HTTP/1.1 408"), head
    assert waited_s < server.context.config.body_timeout_s + 8
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(
        f"POST /offer HTTP/1.1\r\nHost: {server.host}\r\nContent-Type: application/json\r\n"
        "Content-Length: 50000000\r\n\r\n0123456789".encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    writer.close()
    assert head.startswith(b"HTTP/1.1 413"), head


async def test_a_client_leaving_mid_body_is_not_a_500(server: LiveServer, caplog: pytest.LogCaptureFixture) -> None:
    """Failure 5: a client leaving mid-body was logged as a 500."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(
        f"POST /whip HTTP/1.1\r\nHost: {server.host}\r\nContent-Type: application/sdp\r\n"
        "Content-Length: 5000\r\n\r\nv=0\r\n".encode()
    )
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.transport.abort()
    await asyncio.sleep(0.5)
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")], caplog.text


# ---------------------------------------------------------------- 6. slots at no cost


async def test_offers_that_never_connect_cannot_hold_every_slot(server: LiveServer) -> None:
    """Failure 6: /offer POSTs that never do ICE blocked the server for 15.3 s, repeatable forever."""
    from tests.engine.server.webrtc_client import PacedSpeechTrack, make_offer, sample_speech

    config = server.context.config
    base = f"http://{server.host}:{server.port}"
    peers = []
    statuses = []
    async with aiohttp.ClientSession() as http:
        for _ in range(config.max_pending_per_address + 1):
            pc, _ = await make_offer(PacedSpeechTrack(sample_speech(1.0)))
            peers.append(pc)
            async with http.post(f"{base}/offer", json={"sdp": pc.localDescription.sdp, "type": "offer"}) as r:
                statuses.append(r.status)
                if r.status == 429:
                    assert "have not started a session" in (await r.json())["error"]
    start_s = time.perf_counter()
    try:
        accepted = min(config.max_sessions, config.max_pending_per_address)
        assert statuses[:accepted] == [200] * accepted and 429 in statuses or 503 in statuses, statuses
        while server.context.slots.active and time.perf_counter() - start_s < config.ice_timeout_s + 10:
            await asyncio.sleep(0.05)
        freed_s = time.perf_counter() - start_s
        print(f"unconnected offers freed their slots {freed_s:.1f} s after the answers (ICE timeout)")
        assert not server.context.slots.active
        assert freed_s < config.ice_timeout_s + 5
    finally:
        for pc in peers:
            await pc.close()


async def test_an_offer_without_a_dtls_fingerprint_is_refused(server: LiveServer) -> None:
    """Failure 6: an SDP without a=fingerprint was accepted and held a slot until ICE/DTLS failed."""
    from tests.engine.server.webrtc_client import PacedSpeechTrack, make_offer, sample_speech

    pc, _ = await make_offer(PacedSpeechTrack(sample_speech(1.0)))
    await pc.close()
    offer = "\r\n".join(line for line in pc.localDescription.sdp.split("\r\n") if not line.startswith("a=fingerprint"))
    async with aiohttp.ClientSession() as http:
        base = f"http://{server.host}:{server.port}"
        async with http.post(f"{base}/offer", json={"sdp": offer, "type": "offer"}) as response:
            assert response.status == 400
            assert "a=fingerprint" in (await response.json())["error"]
    assert not server.context.slots.active


async def test_empty_keep_alives_do_not_hold_a_slot(server: LiveServer) -> None:
    """Failure 6: one empty binary message every 25 s held a WebSocket slot forever."""
    idle_s = server.context.config.session_idle_timeout_s
    async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url) as ws:
        await ws.send_str(hello())
        assert json.loads((await ws.receive(timeout=10)).data)["type"] == "ready"
        start_s = time.perf_counter()
        error = None
        while time.perf_counter() - start_s < idle_s + 10:
            try:
                await ws.send_bytes(b"" if int(time.perf_counter() * 4) % 2 else b"\0\0")  # empty, or one sample
            except ConnectionError:
                break
            try:
                message = await asyncio.wait_for(ws.receive(), idle_s / 6)
            except TimeoutError:
                continue
            if message.type is aiohttp.WSMsgType.TEXT:
                error = json.loads(message.data)
                break
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                break
        held_s = time.perf_counter() - start_s
    assert error is not None and error["code"] == "timeout", error
    assert held_s < idle_s + 5
    print(f"keep-alive session closed after {held_s:.1f} s: {error['message']}")


# ---------------------------------------------------------------- 7. fairness


async def test_a_fast_sender_does_not_starve_a_real_time_session(server: LiveServer, speech: np.ndarray) -> None:
    """Failure 7: a protocol-legal fast sender (40 x 1 MiB of audio) cut a real-time session to 3-5 records/s."""
    times = RecordTimes()
    healthy = asyncio.create_task(stream(server.ws_url, speech[: 7 * 16_000], Hello(), realtime=True, on_record=times))
    await asyncio.sleep(1.5)
    limit = server.context.config.max_message_bytes
    flood_start_s = time.perf_counter()
    records = 0
    async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url, max_msg_size=0) as fast:
        await fast.send_str(hello())
        assert json.loads((await fast.receive(timeout=10)).data)["type"] == "ready"
        audio = np.tile(speech[:, 0], limit // speech.nbytes + 1)[: limit // 2].tobytes()

        async def send_all() -> None:
            for _ in range(40):
                await fast.send_bytes(audio)

        async def read_all() -> None:
            nonlocal records
            while (await fast.receive()).type is aiohttp.WSMsgType.BINARY:
                records += 1

        sender = asyncio.create_task(send_all())
        reader = asyncio.create_task(read_all())
        await asyncio.sleep(4.0)
        flood_end_s = time.perf_counter()
        sender.cancel()
        reader.cancel()
        await asyncio.gather(sender, reader, return_exceptions=True)
    result = await healthy
    rate = times.rate_between(flood_start_s, flood_end_s)
    audio_s = records / 25
    print(f"fast sender got {audio_s:.1f} s of audio through in 4 s; the real-time session {rate:.1f} records/s")
    assert result.end is not None and len(result.frames) == result.end.frames
    assert rate >= 0.7 * 25
    assert audio_s <= 4.0 * server.context.config.max_audio_speed + 5 + 2  # its pace, after the burst allowance


# ---------------------------------------------------------------- 8. hellos that crashed the handler


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (hello(sample_format=["s16le"]), "unsupported_audio_format"),
        (hello(sample_format={}), "unsupported_audio_format"),
        (hello(encoding=["json"]), "bad_hello"),
        (hello(outputs=[{}]), "bad_hello"),
        ('{"type": "hello", "version": 2, "x": ' + "[" * 100_000 + "]" * 100_000 + "}", "bad_message"),
    ],
    ids=["format-list", "format-object", "encoding-list", "outputs-object", "deep-nesting"],
)
async def test_malformed_hellos_get_an_error_not_a_500(server: LiveServer, message: str, code: str) -> None:
    """Failure 8: these hellos crashed the handler: a raw HTTP 500 in the WebSocket stream, the client waited 31 s."""
    start_s = time.perf_counter()
    async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url, max_msg_size=0) as ws:
        await ws.send_str(message)
        error = await ws.receive(timeout=10)
        close = await ws.receive(timeout=10)
    assert error.type is aiohttp.WSMsgType.TEXT, error
    assert json.loads(error.data)["code"] == code
    assert close.type is aiohttp.WSMsgType.CLOSE and close.data == 1008
    assert time.perf_counter() - start_s < 5


# ---------------------------------------------------------------- 10. 500s where a 4xx belongs


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/app.js%00", 404),
        ("GET", "/" + "a" * 8000, 404),
        ("GET", "/offer", 405),
        ("GET", "/whip", 405),
    ],
    ids=["nul", "long-path", "get-offer", "get-whip"],
)
async def test_bad_paths_and_methods_get_a_4xx(server: LiveServer, method: str, path: str, status: int) -> None:
    """Failure 10: GET /app.js%00 and an 8000-character path gave 500; GET /offer and /whip gave 404, not 405."""
    async with aiohttp.ClientSession() as http:
        url = f"http://{server.host}:{server.port}{path}"
        async with http.request(method, url) as response:
            assert response.status == status, await response.text()
            assert "error" in await response.json()
            if status == 405:
                assert response.headers["Allow"] == "POST"


async def test_deeply_nested_json_offer_gets_400(server: LiveServer) -> None:
    """Failure 10: 100k-deep JSON on /offer was a 500 (RecursionError)."""
    body = "[" * 100_000 + "]" * 100_000
    async with aiohttp.ClientSession() as http:
        url = f"http://{server.host}:{server.port}/offer"
        async with http.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
            assert response.status == 400
            assert "JSON" in (await response.json())["error"]


async def test_malformed_sdp_says_what_is_wrong(server: LiveServer) -> None:
    """Failure 10: "malformed SDP: AssertionError" said nothing useful."""
    offer = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio nine UDP/TLS/RTP/SAVPF 111\r\n"
    async with aiohttp.ClientSession() as http:
        url = f"http://{server.host}:{server.port}/whip"
        async with http.post(url, data=offer, headers={"Content-Type": "application/sdp"}) as response:
            assert response.status == 400
            error = (await response.json())["error"]
    assert "line 5" in error and "m=<media> <port> <proto> <formats>" in error and "AssertionError" not in error


async def test_a_message_after_end_is_refused(server: LiveServer) -> None:
    """Failure 10: messages after the end were silently ignored (PROTOCOL.md promises unexpected_message)."""
    async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url) as ws:
        await ws.send_str(hello())
        assert json.loads((await ws.receive(timeout=10)).data)["type"] == "ready"
        await ws.send_bytes(bytes(16_000 * 2 * 4))  # 4 s of silence: its records take a while to finish
        await ws.send_str('{"type": "end"}')
        await ws.send_bytes(bytes(640))
        messages = []
        while (message := await ws.receive(timeout=10)).type is not aiohttp.WSMsgType.CLOSE:
            messages.append(message)
    texts = [json.loads(m.data) for m in messages if m.type is aiohttp.WSMsgType.TEXT]
    assert texts and texts[-1]["type"] == "error" and texts[-1]["code"] == "unexpected_message", texts
    assert message.data == 1008


async def test_a_request_flood_from_one_address_gets_429(server: LiveServer) -> None:
    """Every kind of request counts against the address's rate (a flood of cheap requests is junk too)."""
    rate = server.context.config.max_requests_per_s_per_address
    statuses = []
    async with aiohttp.ClientSession() as http:
        for _ in range(int(rate * 2)):
            async with http.get(f"http://{server.host}:{server.port}/favicon.svg") as response:
                statuses.append(response.status)
    assert statuses[0] == 200 and statuses.count(429) >= rate / 2, statuses
    await asyncio.sleep(1.0)  # the bucket refills: later tests are not affected
