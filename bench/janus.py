"""A real SFU on loopback for the WHIP bench and tests: Janus (VideoRoom) behind simple-whip-server, and a
subscriber that joins the room through Janus's HTTP API with aiortc.

Janus 1.1.2 comes from Debian (``apt-get install janus``); simple-whip-server
from Debian too, unpacked with ``dpkg -x`` into ``SIMPLE_WHIP_SERVER_DIR``
(default /opt/simple-whip-server: ``src/`` from the package, ``node_modules``
from npm: async, express@4, cors, colors, debug, websocket). Both run with
configurations written here, on free ports, in a temporary folder.
"""

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from bench.webrtc_peer import use_browser_like_buffers

JANUS_LIB = Path("/usr/lib/x86_64-linux-gnu/janus")
WHIP_SERVER_DIR = Path(os.environ.get("SIMPLE_WHIP_SERVER_DIR", "/opt/simple-whip-server"))
ROOMS = {"vp8": 1234, "h264": 1235}
"""VideoRoom rooms by the video codec they take (a room has one)."""
START_TIMEOUT_S = 30.0
UNUSED_PLUGINS = "audiobridge duktape echotest lua nosip recordplay sip streaming textroom videocall voicemail"
UNUSED_TRANSPORTS = "mqtt nanomsg pfunix rabbitmq"


def missing() -> str | None:
    """Why the SFU cannot run here (None when it can): the skip reason, with the install lines."""
    if shutil.which("janus") is None or not (JANUS_LIB / "plugins" / "libjanus_videoroom.so").exists():
        return "Janus is not installed (apt-get install -y janus)"
    if shutil.which("node") is None:
        return "Node.js is not installed (apt-get install -y nodejs npm)"
    if not (WHIP_SERVER_DIR / "src" / "server.js").exists() or not (WHIP_SERVER_DIR / "node_modules").is_dir():
        return (
            f"simple-whip-server is not in {WHIP_SERVER_DIR} (apt-get download simple-whip-server; dpkg -x it; "
            "copy usr/share/simple-whip-server/src there; npm install async express@4 cors colors debug websocket)"
        )
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sfu:
    """The running SFU: where its WHIP front end and its Janus HTTP API listen."""

    whip_base: str
    janus_http: str
    folder: Path
    pids: dict[str, int] = field(default_factory=dict)
    """Process ids by name (``janus``, ``simple-whip-server``): for reading their memory and descriptors."""

    async def create_endpoint(self, codec: str, token: str | None = None) -> str:
        """A WHIP endpoint publishing into the room for ``codec``; its URL."""
        endpoint_id = f"avatar-{secrets.token_hex(4)}"
        body: dict[str, Any] = {"id": endpoint_id, "room": ROOMS[codec]}
        if token:
            body["token"] = token
        async with aiohttp.ClientSession() as http, http.post(f"{self.whip_base}/create", json=body) as response:
            assert response.status == 200, await response.text()
        return f"{self.whip_base}/endpoint/{endpoint_id}"


def _write_configs(folder: Path, *, http_port: int, ws_port: int) -> None:
    disabled_plugins = ",".join(f"libjanus_{name}.so" for name in UNUSED_PLUGINS.split())
    disabled_transports = ",".join(f"libjanus_{name}.so" for name in UNUSED_TRANSPORTS.split())
    (folder / "janus.jcfg").write_text(
        f"""general: {{
    configs_folder = "{folder}"
    plugins_folder = "{JANUS_LIB / "plugins"}"
    transports_folder = "{JANUS_LIB / "transports"}"
    events_folder = "{JANUS_LIB / "events"}"
    loggers_folder = "{JANUS_LIB / "loggers"}"
    debug_level = 3
    admin_secret = "{secrets.token_hex(8)}"
}}
media: {{ rtp_port_range = "20000-40000" }}
nat: {{ ice_ignore_list = "vmnet" }}
plugins: {{ disable = "{disabled_plugins}" }}
transports: {{ disable = "{disabled_transports}" }}
events: {{ broadcast = false }}
"""
    )
    (folder / "janus.transport.http.jcfg").write_text(
        f"""general: {{ json = "plain"  base_path = "/janus"  http = true  port = {http_port}  https = false
    ip = "127.0.0.1" }}
admin: {{ admin_http = false }}
"""
    )
    (folder / "janus.transport.websockets.jcfg").write_text(
        f"""general: {{ json = "plain"  ws = true  ws_port = {ws_port}  ws_ip = "127.0.0.1"  wss = false }}
admin: {{ admin_ws = false }}
"""
    )
    rooms = "\n".join(
        f"""room-{room}: {{ description = "avatar {codec}"  publishers = 4  bitrate = 2000000  fir_freq = 2
    videocodec = "{codec}"  audiocodec = "opus" }}"""
        for codec, room in ROOMS.items()
    )
    (folder / "janus.plugin.videoroom.jcfg").write_text(f"general: {{ }}\n{rooms}\n")


async def _wait_http(url: str, process: subprocess.Popen, name: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    async with aiohttp.ClientSession() as http:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited ({process.returncode}): {log.read_text()[-2000:]}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{name} did not answer {url} within {START_TIMEOUT_S:g} s: {log.read_text()[-2000:]}"
                )
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def running_sfu(folder: Path) -> AsyncIterator[Sfu]:
    """Janus and simple-whip-server, started in ``folder`` on free ports, stopped on exit."""
    http_port, ws_port, whip_port = _free_port(), _free_port(), _free_port()
    janus_folder = folder / "janus"
    janus_folder.mkdir()
    _write_configs(janus_folder, http_port=http_port, ws_port=ws_port)
    whip_folder = folder / "whip"
    (whip_folder / "src").mkdir(parents=True)
    for script in ("server.js", "whip-janus.js"):
        shutil.copy(WHIP_SERVER_DIR / "src" / script, whip_folder / "src" / script)
    (whip_folder / "src" / "config.js").write_text(
        "module.exports = " + json.dumps(
            {"janus": {"address": f"ws://127.0.0.1:{ws_port}"}, "port": whip_port, "rest": "/whip",
             "allowTrickle": True, "strictETags": False, "iceServers": []}
        ) + ";\n"
    )  # fmt: skip
    (whip_folder / "node_modules").symlink_to(WHIP_SERVER_DIR / "node_modules")
    processes: list[subprocess.Popen] = []
    janus_log, whip_log = folder / "janus.log", folder / "whip.log"
    try:
        with janus_log.open("w") as out:
            processes.append(
                subprocess.Popen(
                    ["janus", "-F", str(janus_folder), "-C", str(janus_folder / "janus.jcfg"), "-N"],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
        await _wait_http(f"http://127.0.0.1:{http_port}/janus/info", processes[0], "janus", janus_log)
        with whip_log.open("w") as out:
            processes.append(
                subprocess.Popen(["node", "src/server.js"], cwd=whip_folder, stdout=out, stderr=subprocess.STDOUT)
            )
        whip_base = f"http://127.0.0.1:{whip_port}/whip"
        await _wait_http(f"{whip_base}/healthcheck", processes[1], "simple-whip-server", whip_log)
        pids = {"janus": processes[0].pid, "simple-whip-server": processes[1].pid}
        yield Sfu(whip_base=whip_base, janus_http=f"http://127.0.0.1:{http_port}/janus", folder=folder, pids=pids)
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# -- a subscriber -----------------------------------------------------------------------------------


FrameSink = Callable[[float, Any], None]
"""Called with (arrival loop time, decoded frame) for each frame a subscriber receives."""


@dataclass
class Subscription:
    """What a subscriber received: (arrival loop time, frame) for video and audio, unless sinks took them."""

    pc: RTCPeerConnection
    video: list[tuple[float, Any]] = field(default_factory=list)
    audio: list[tuple[float, Any]] = field(default_factory=list)


class JanusSubscriber:
    """Joins a VideoRoom as a subscriber to its publisher, through the Janus HTTP API, with aiortc."""

    def __init__(self, janus_http: str) -> None:
        self._base = janus_http
        self._http = aiohttp.ClientSession()
        self._session_url = ""
        self._handle_url = ""
        self._events: asyncio.Queue[dict] = asyncio.Queue()
        self._tasks: list[asyncio.Task] = []
        self.subscription: Subscription | None = None

    async def _post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {**body, "transaction": secrets.token_hex(6)}
        async with self._http.post(url, json=body) as response:
            reply = await response.json(content_type=None)
        if reply.get("janus") == "error":
            raise RuntimeError(f"janus: {reply['error']}")
        return reply

    async def _poll(self) -> None:
        while True:
            async with self._http.get(f"{self._session_url}?maxev=5") as response:
                reply = await response.json(content_type=None)
            for event in reply if isinstance(reply, list) else [reply]:
                if event.get("janus") != "keepalive":
                    await self._events.put(event)

    async def _event_with(self, key: str, timeout_s: float = 15.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout_s):
            while True:
                event = await self._events.get()
                if key in event or key in event.get("plugindata", {}).get("data", {}):
                    return event

    async def subscribe(
        self,
        room: int,
        timeout_s: float = 20.0,
        *,
        on_video: FrameSink | None = None,
        on_audio: FrameSink | None = None,
        browser_like: bool = False,
    ) -> Subscription:
        """Wait for a publisher in ``room``, subscribe to its streams, and start receiving.

        Frames go to ``on_video`` and ``on_audio`` when given (a long run cannot
        keep them all), else into the subscription's lists. ``browser_like``:
        release each frame as soon as it is complete, as a browser does
        (``bench.webrtc_peer.BrowserLikeJitterBuffer``), not one frame later as
        aiortc's own buffer does: for measuring latency.
        """
        created = await self._post(self._base, {"janus": "create"})
        self._session_url = f"{self._base}/{created['data']['id']}"
        self._tasks.append(asyncio.get_running_loop().create_task(self._poll()))
        attached = await self._post(self._session_url, {"janus": "attach", "plugin": "janus.plugin.videoroom"})
        self._handle_url = f"{self._session_url}/{attached['data']['id']}"
        deadline = time.monotonic() + timeout_s
        while True:
            reply = await self._post(
                self._handle_url, {"janus": "message", "body": {"request": "listparticipants", "room": room}}
            )
            publishers = [p for p in reply["plugindata"]["data"].get("participants", []) if p.get("publisher")]
            if publishers:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"no publisher appeared in room {room} within {timeout_s:g} s")
            await asyncio.sleep(0.2)
        join = {"request": "join", "ptype": "subscriber", "room": room, "streams": [{"feed": publishers[0]["id"]}]}
        await self._post(self._handle_url, {"janus": "message", "body": join})
        offer = (await self._event_with("jsep"))["jsep"]
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        subscription = Subscription(pc=pc)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                sink = on_video or (lambda t, frame: subscription.video.append((t, frame)))
            else:
                sink = on_audio or (lambda t, frame: subscription.audio.append((t, frame)))
            self._tasks.append(asyncio.get_running_loop().create_task(_drain(track, sink)))

        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type=offer["type"]))
        if browser_like:
            use_browser_like_buffers(pc)  # before the answer: no packet can have arrived
        await pc.setLocalDescription(await pc.createAnswer())
        answer = {"type": "answer", "sdp": pc.localDescription.sdp}
        await self._post(self._handle_url, {"janus": "message", "body": {"request": "start"}, "jsep": answer})
        self.subscription = subscription
        return subscription

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.subscription is not None:
            await self.subscription.pc.close()
        if self._session_url:
            with contextlib.suppress(Exception):
                await self._post(self._session_url, {"janus": "destroy"})
        await self._http.close()


async def _drain(track: MediaStreamTrack, sink: FrameSink) -> None:
    loop = asyncio.get_running_loop()
    with contextlib.suppress(MediaStreamError):
        while True:
            frame = await track.recv()
            sink(loop.time(), frame)
