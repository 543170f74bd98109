"""Who may open sessions: tokens on /offer, /whip, /ws, /config and /metrics, Origin and Host checks.

Issue 13, failure 3: there was no authentication anywhere and no Origin or
Host check: a WebSocket upgrade with ``Origin: http://attacker.example`` and
``Host: attacker.example`` got a full session. A real server with tokens
required, real HTTP and WebSocket clients.
"""

import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import jwt
import pytest
import pytest_asyncio

from engine.server.config import IceServer, ServerConfig
from engine.server.tls import local_addresses
from tests.engine.server.live_server import LiveServer, live_server

pytestmark = pytest.mark.asyncio(loop_scope="module")

TOKEN = "access-token-for-the-tests-0123456789"
METRICS_TOKEN = "metrics-token-for-the-tests-0123456789"
JWT_SECRET = "jwt-secret-for-the-tests-0123456789abcdef"
HELLO = json.dumps({"type": "hello", "version": 2})


@pytest.fixture(scope="module")
def config(server_config: ServerConfig) -> ServerConfig:
    return replace(
        server_config,
        auth="on",
        access_token=TOKEN,
        metrics_token=METRICS_TOKEN,
        jwt_secret=JWT_SECRET,
        ice_servers=(IceServer(urls=("turn:turn.example:3478",), username="u", credential="p"),),
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(config: ServerConfig) -> AsyncIterator[LiveServer]:
    async with live_server(config) as running:
        yield running


@pytest_asyncio.fixture(autouse=True, loop_scope="module")
async def every_session_releases_its_slot(server: LiveServer) -> AsyncIterator[None]:
    yield
    await server.wait_until_idle()


def base(server: LiveServer) -> str:
    return f"http://{server.host}:{server.port}"


def session_jwt(**claims: object) -> str:
    return jwt.encode({"exp": int(time.time()) + 60, **claims}, JWT_SECRET, algorithm="HS256")


async def status_of(
    method: str, url: str, *, headers: dict[str, str] | None = None, data: str | None = None
) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.request(method, url, headers=headers, data=data) as response:
        body = await response.json() if response.content_type == "application/json" else {}
        if response.status == 401:
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        return response.status, body


async def test_every_session_endpoint_needs_the_token(server: LiveServer) -> None:
    offer = json.dumps({"sdp": "v=0", "type": "offer"})
    json_type = {"Content-Type": "application/json"}
    for method, path, data in (
        ("POST", "/offer", offer),
        ("POST", "/whip", "v=0"),
        ("DELETE", "/whip/abc", None),
        ("GET", "/config", None),
        ("GET", "/ws", None),
    ):
        status, body = await status_of(method, base(server) + path, headers=json_type, data=data)
        assert status == 401 and "bearer token is required" in body["error"], (path, status, body)
    status, body = await status_of(
        "POST", f"{base(server)}/offer", headers={**json_type, "Authorization": "Bearer wrong-token-0123456789"},
        data=offer,
    )  # fmt: skip
    assert status == 401 and "not valid" in body["error"]
    status, body = await status_of(
        "POST", f"{base(server)}/offer", headers={**json_type, "Authorization": f"Bearer {TOKEN}"}, data=offer
    )
    assert status == 400 and "offer" in body["error"]  # past the gate: the offer itself is refused
    status, body = await status_of("GET", f"{base(server)}/config?token={TOKEN}")
    assert status == 200
    assert body == {
        "ice_servers": [{"urls": ["turn:turn.example:3478"], "username": "u", "credential": "p"}],
        "forward": {},  # the operator allowed no avatar apps
    }
    for page in ("/", "/app.js", "/sample-speech.wav"):  # the page itself is public; what it opens is not
        async with aiohttp.ClientSession() as http, http.get(base(server) + page) as response:
            assert response.status == 200, page
    assert server.context.gate.refusals["auth"] >= 6


async def test_metrics_need_their_own_token(server: LiveServer) -> None:
    url = f"{base(server)}/metrics"
    assert (await status_of("GET", url))[0] == 401
    assert (await status_of("GET", url, headers={"Authorization": f"Bearer {TOKEN}"}))[0] == 403
    assert (await status_of("GET", url, headers={"Authorization": f"Bearer {session_jwt()}"}))[0] == 403
    async with aiohttp.ClientSession() as http:
        for token in (METRICS_TOKEN, session_jwt(scope="metrics")):
            async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
                assert response.status == 200
                assert 'avatar_refused_total{kind="auth"}' in await response.text()


async def test_websocket_token_in_the_query_or_the_subprotocol(server: LiveServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"{server.ws_url}?token={TOKEN}") as ws:
            await ws.send_str(HELLO)
            assert json.loads((await ws.receive(timeout=10)).data)["type"] == "ready"
        async with http.ws_connect(server.ws_url, protocols=("avatar.v1", f"bearer.{TOKEN}")) as ws:
            assert ws.protocol == "avatar.v1"  # the token is never echoed back
            await ws.send_str(HELLO)
            assert json.loads((await ws.receive(timeout=10)).data)["type"] == "ready"
        async with http.ws_connect(server.ws_url, headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
            await ws.send_str(HELLO)
            assert json.loads((await ws.receive(timeout=10)).data)["type"] == "ready"


async def test_a_jwt_caps_its_holders_sessions(server: LiveServer) -> None:
    token = session_jwt(sub="game-1", max_sessions=1)
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{server.ws_url}?token={token}") as first:
        await first.send_str(HELLO)
        assert json.loads((await first.receive(timeout=10)).data)["type"] == "ready"
        async with http.ws_connect(f"{server.ws_url}?token={token}") as second:
            await second.send_str(HELLO)
            error = json.loads((await second.receive(timeout=10)).data)
        assert error["code"] == "too_many_sessions"
        other = session_jwt(sub="game-2", max_sessions=1)
        async with http.ws_connect(f"{server.ws_url}?token={other}") as third:
            await third.send_str(HELLO)
            assert json.loads((await third.receive(timeout=10)).data)["type"] == "ready"


async def test_cross_site_pages_and_rebound_names_are_refused(server: LiveServer) -> None:
    """The issue's probe: Origin http://attacker.example and Host attacker.example got 101 and a full session."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    status, body = await status_of("GET", f"{base(server)}/ws", headers={**auth, "Origin": "http://attacker.example"})
    assert status == 403 and "attacker.example" in body["error"]
    for path in ("/ws", "/offer", "/metrics", "/"):
        status, body = await status_of("GET", base(server) + path, headers={**auth, "Host": "attacker.example"})
        assert status == 403 and "DNS rebinding" in body["error"], path
    own = f"http://{server.host}:{server.port}"
    async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url, headers={**auth, "Origin": own}) as ws:
        await ws.send_str(HELLO)
        assert json.loads((await ws.receive(timeout=10)).data)["type"] == "ready"
    assert server.context.gate.refusals["origin"] >= 1 and server.context.gate.refusals["host"] >= 4


@pytest.mark.skipif(
    not [a for a in local_addresses() if not a.startswith("127.") and ":" not in a],
    reason="this machine has no non-loopback IPv4 address",
)
async def test_a_non_loopback_server_refuses_sessions_without_a_token(server_config: ServerConfig) -> None:
    """Done-when of issue 13: the server refuses unauthenticated sessions when bound to a non-loopback address."""
    address = next(a for a in local_addresses() if not a.startswith("127.") and ":" not in a)
    config = replace(server_config, host=address, access_token=TOKEN)  # auth "auto"
    async with live_server(config) as running, aiohttp.ClientSession() as http:
        async with http.get(f"http://{address}:{running.port}/ws") as response:
            assert response.status == 401
        async with http.ws_connect(f"ws://{address}:{running.port}/ws?token={TOKEN}") as ws:
            await ws.send_str(HELLO)
            assert json.loads((await ws.receive(timeout=10)).data)["type"] == "ready"
        await running.wait_until_idle()
