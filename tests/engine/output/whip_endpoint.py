"""A minimal WHIP endpoint for the tests: aiohttp + a real aiortc peer that receives what is published.

It answers like an SFU's WHIP front end (201, ``Location`` relative to the
endpoint, DELETE on the resource) and can be told to refuse (any status) or
to drop the current connection, for the error and reconnection paths.
"""

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError


@dataclass
class Received:
    """What one published session delivered: decoded video frames and audio frames, with their arrival."""

    offer_sdp: str
    headers: dict[str, str]
    video: list = field(default_factory=list)
    audio: list = field(default_factory=list)
    deleted: bool = False


@dataclass
class WhipEndpoint:
    """The endpoint's state: what to answer next, and what every session received."""

    token: str | None = None
    refuse_with: int | None = None
    url: str = ""
    sessions: list[Received] = field(default_factory=list)
    pcs: list[RTCPeerConnection] = field(default_factory=list)
    tasks: set[asyncio.Task] = field(default_factory=set)
    resources: dict[str, tuple[Received, RTCPeerConnection]] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    async def drop_current(self) -> None:
        """Close the newest connection from our side, as an SFU restarting would."""
        await self.pcs[-1].close()

    async def post(self, request: web.Request) -> web.Response:
        if self.refuse_with is not None:
            return web.Response(status=self.refuse_with, text="refused by the test")
        if self.token is not None and request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.Response(status=401, text="bad token")
        if request.content_type != "application/sdp":
            return web.Response(status=415)
        offer = await request.text()
        received = Received(offer_sdp=offer, headers=dict(request.headers))
        self.sessions.append(received)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs.append(pc)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            sink = received.video if track.kind == "video" else received.audio
            task = asyncio.get_running_loop().create_task(_drain(track, sink))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        resource = f"resource/{next(self._ids)}"
        self.resources[resource] = (received, pc)
        return web.Response(
            status=201, text=pc.localDescription.sdp, content_type="application/sdp", headers={"Location": resource}
        )

    async def delete(self, request: web.Request) -> web.Response:
        entry = self.resources.pop(f"resource/{request.match_info['id']}", None)
        if entry is None:
            return web.Response(status=404)
        received, pc = entry
        received.deleted = True
        await pc.close()
        return web.Response(status=200)


async def _drain(track: MediaStreamTrack, sink: list) -> None:
    loop = asyncio.get_running_loop()
    with contextlib.suppress(MediaStreamError):
        while True:
            frame = await track.recv()
            sink.append((loop.time(), frame))


@contextlib.asynccontextmanager
async def whip_endpoint(token: str | None = None) -> AsyncIterator[WhipEndpoint]:
    """An endpoint at ``<url>`` (``/whip/endpoint``) on a free loopback port."""
    endpoint = WhipEndpoint(token=token)
    app = web.Application()
    app.router.add_post("/whip/endpoint", endpoint.post)
    app.router.add_delete("/whip/resource/{id}", endpoint.delete)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    endpoint.url = f"http://127.0.0.1:{port}/whip/endpoint"
    try:
        yield endpoint
    finally:
        for pc in endpoint.pcs:
            await pc.close()
        for task in list(endpoint.tasks):
            task.cancel()
        await asyncio.gather(*endpoint.tasks, return_exceptions=True)
        await runner.cleanup()
