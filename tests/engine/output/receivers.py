"""Real receivers for the app outputs: a VMC receiver (python-osc), VTube Studio's plugin API (a websockets
server speaking its documented messages) and a Live Link Face decoder written from the documented layout.

Shared by the output tests (fixtures in conftest.py) and the tests that forward through the real server.
"""

import asyncio
import json
import re
import struct
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import AsyncIOOSCUDPServer
from websockets.asyncio.server import ServerConnection, serve

# ---------------------------------------------------------------- VMC


@dataclass
class Applied:
    """One frame as the receiver saw it: the shapes set before an Apply, and when the Apply arrived."""

    shapes: dict[str, float]
    received_s: float
    time_s: float | None = None
    head: tuple[float, ...] | None = None
    order: list[str] = field(default_factory=list)


class VmcReceiver:
    """A VMC receiver (what VSeeFace does, in python-osc): collects Blend/Val until Blend/Apply."""

    def __init__(self) -> None:
        self.frames: list[Applied] = []
        self._pending = Applied({}, 0.0)
        self.dispatcher = Dispatcher()
        self.dispatcher.map("/VMC/Ext/Blend/Val", self._value)
        self.dispatcher.map("/VMC/Ext/Blend/Apply", self._apply)
        self.dispatcher.map("/VMC/Ext/Bone/Pos", self._bone)
        self.dispatcher.map("/VMC/Ext/T", self._time)

    def _value(self, address: str, name: str, value: float) -> None:
        self._pending.shapes[name] = value
        self._pending.order.append(address)

    def _bone(self, address: str, bone: str, *values: float) -> None:
        assert bone == "Head" and len(values) == 7
        self._pending.head = values
        self._pending.order.append(address)

    def _apply(self, address: str) -> None:
        self._pending.received_s = time.perf_counter()
        self._pending.order.append(address)
        self.frames.append(self._pending)
        self._pending = Applied({}, 0.0)

    def _time(self, address: str, seconds: float) -> None:
        self.frames[-1].time_s = seconds


@asynccontextmanager
async def running_vmc_receiver() -> AsyncIterator[tuple[VmcReceiver, int]]:
    """A VMC receiver on 127.0.0.1 and its port."""
    vmc = VmcReceiver()
    server = AsyncIOOSCUDPServer(("127.0.0.1", 0), vmc.dispatcher, asyncio.get_running_loop())
    transport, _ = await server.create_serve_endpoint()
    yield vmc, transport.get_extra_info("sockname")[1]
    transport.close()


async def settle(vmc: VmcReceiver, count: int) -> None:
    """Wait until ``count`` frames arrived (UDP on loopback: none is lost here)."""
    deadline = time.perf_counter() + 5
    while len(vmc.frames) < count and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)


# ---------------------------------------------------------------- VTube Studio


DEFAULT_PARAMETERS = {"MouthOpen", "MouthSmile", "FaceAngleX", "FaceAngleY", "FaceAngleZ", "EyeOpenLeft", "Brows"}
"""A few of VTube Studio's own input parameters (the output may only inject ones that exist)."""


@dataclass
class FakeVTubeStudio:
    """The API side of VTube Studio, from its README: tokens, sessions, custom parameters, injection.

    Checks what the README requires of every request and answers APIError where VTube Studio would.
    """

    allow: bool = True
    tokens_issued: list[str] = field(default_factory=list)
    authenticated_sessions: int = 0
    created: dict[str, dict[str, Any]] = field(default_factory=dict)
    creations: int = 0
    injections: list[tuple[float, dict[str, float], dict[str, Any]]] = field(default_factory=list)
    revoked: bool = False

    async def handle(self, ws: ServerConnection) -> None:
        authenticated = False
        async for text in ws:
            request = json.loads(text)
            assert request["apiName"] == "VTubeStudioPublicAPI" and request["apiVersion"] == "1.0"
            request_id = request["requestID"]
            assert re.fullmatch(r"[\x20-\x7e]{1,64}", request_id)
            kind, data = request["messageType"], request.get("data") or {}

            async def answer(message_type: str, body: dict[str, Any], request_id: str = request_id) -> None:
                await ws.send(
                    json.dumps(
                        {
                            "apiName": "VTubeStudioPublicAPI",
                            "apiVersion": "1.0",
                            "timestamp": int(time.time() * 1000),
                            "messageType": message_type,
                            "requestID": request_id,
                            "data": body,
                        }
                    )
                )

            if kind == "AuthenticationTokenRequest":
                assert 3 <= len(data["pluginName"]) <= 32 and 3 <= len(data["pluginDeveloper"]) <= 32
                if not self.allow:
                    await answer("APIError", {"errorID": 50, "message": "User has denied API access for your plugin."})
                    continue
                token = f"token-{len(self.tokens_issued)}"
                self.tokens_issued.append(token)
                self.revoked = False
                await answer("AuthenticationTokenResponse", {"authenticationToken": token})
            elif kind == "AuthenticationRequest":
                authenticated = not self.revoked and data["authenticationToken"] in self.tokens_issued
                self.authenticated_sessions += authenticated
                await answer("AuthenticationResponse", {"authenticated": authenticated, "reason": "test"})
            elif not authenticated:
                await answer("APIError", {"errorID": 8, "message": "not authenticated"})
            elif kind == "ParameterCreationRequest":
                name = data["parameterName"]
                assert re.fullmatch(r"[A-Za-z0-9]{4,32}", name), name
                assert all(-1e6 <= data[key] <= 1e6 for key in ("min", "max", "defaultValue"))
                assert len(data.get("explanation", "")) < 256
                self.created[name] = data
                self.creations += 1
                await answer("ParameterCreationResponse", {"parameterName": name})
            elif kind == "InjectParameterDataRequest":
                assert data["mode"] == "set" and data["faceFound"] is True
                values = {item["id"]: item["value"] for item in data["parameterValues"]}
                unknown = set(values) - set(self.created) - DEFAULT_PARAMETERS
                if unknown or not all(-1e6 <= v <= 1e6 for v in values.values()):
                    await answer("APIError", {"errorID": 453, "message": f"unknown parameters {sorted(unknown)}"})
                    continue
                self.injections.append((time.perf_counter(), values, data))
                await answer("InjectParameterDataResponse", {})
            else:
                await answer("APIError", {"errorID": 1, "message": f"unexpected {kind}"})


@asynccontextmanager
async def running_vtube_studio() -> AsyncIterator[tuple[FakeVTubeStudio, str]]:
    """VTube Studio's API on 127.0.0.1 and its URL."""
    app = FakeVTubeStudio()
    async with serve(app.handle, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield app, f"ws://127.0.0.1:{port}"


# ---------------------------------------------------------------- Live Link Face

# The layout, as open-source receivers read the app's packets (all big-endian): u8 version 6; i32 length +
# UTF-8 device id; i32 length + UTF-8 subject name; i32 frame; f32 sub-frame; i32 fps numerator; i32
# denominator; u8 count 61; 61 f32: 52 ARKit shapes in Unreal's EARFaceBlendShape order, then head yaw,
# pitch, roll and both eyes' yaw, pitch, roll.
UNREAL_ORDER = [
    "EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft", "EyeLookOutLeft", "EyeLookUpLeft", "EyeSquintLeft",
    "EyeWideLeft", "EyeBlinkRight", "EyeLookDownRight", "EyeLookInRight", "EyeLookOutRight", "EyeLookUpRight",
    "EyeSquintRight", "EyeWideRight", "JawForward", "JawLeft", "JawRight", "JawOpen", "MouthClose", "MouthFunnel",
    "MouthPucker", "MouthLeft", "MouthRight", "MouthSmileLeft", "MouthSmileRight", "MouthFrownLeft",
    "MouthFrownRight", "MouthDimpleLeft", "MouthDimpleRight", "MouthStretchLeft", "MouthStretchRight",
    "MouthRollLower", "MouthRollUpper", "MouthShrugLower", "MouthShrugUpper", "MouthPressLeft", "MouthPressRight",
    "MouthLowerDownLeft", "MouthLowerDownRight", "MouthUpperUpLeft", "MouthUpperUpRight", "BrowDownLeft",
    "BrowDownRight", "BrowInnerUp", "BrowOuterUpLeft", "BrowOuterUpRight", "CheekPuff", "CheekSquintLeft",
    "CheekSquintRight", "NoseSneerLeft", "NoseSneerRight", "TongueOut",
    "HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
    "RightEyeYaw", "RightEyePitch", "RightEyeRoll",
]  # fmt: skip


@dataclass
class FacePacket:
    version: int
    device_id: str
    subject: str
    frame: int
    sub_frame: float
    rate: tuple[int, int]
    values: dict[str, float]
    received_s: float


def decode(data: bytes, received_s: float) -> FacePacket:
    version = data[0]
    (id_length,) = struct.unpack_from(">i", data, 1)
    device_id = data[5 : 5 + id_length].decode()
    offset = 5 + id_length
    (name_length,) = struct.unpack_from(">i", data, offset)
    subject = data[offset + 4 : offset + 4 + name_length].decode()
    offset += 4 + name_length
    frame, sub_frame, numerator, denominator, count = struct.unpack_from(">ifiiB", data, offset)
    offset += 17
    values = struct.unpack_from(f">{count}f", data, offset)
    assert offset + 4 * count == len(data), "trailing bytes"
    return FacePacket(
        version,
        device_id,
        subject,
        frame,
        sub_frame,
        (numerator, denominator),
        dict(zip(UNREAL_ORDER, values)),
        received_s,
    )


def decode_at_fixed_offsets(data: bytes) -> tuple[int, str, str]:
    """How PyLiveLinkFace reads the start: a little-endian i32 version, a 37-byte id, then the name."""
    (version,) = struct.unpack_from("<i", data, 0)
    (name_length,) = struct.unpack_from(">i", data, 41)
    return version, data[4:41].decode(), data[45 : 45 + name_length].decode()


class LiveLinkReceiver(asyncio.DatagramProtocol):
    """Decodes every datagram as Live Link Face (``decode``), keeping the raw bytes too."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []
        self.packets: list[FacePacket] = []

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.raw.append(data)
        self.packets.append(decode(data, time.perf_counter()))


@asynccontextmanager
async def running_live_link() -> AsyncIterator[tuple[LiveLinkReceiver, int]]:
    """A Live Link Face receiver on 127.0.0.1 and its port."""
    transport, protocol = await asyncio.get_running_loop().create_datagram_endpoint(
        LiveLinkReceiver, local_addr=("127.0.0.1", 0)
    )
    yield protocol, transport.get_extra_info("sockname")[1]
    transport.close()


async def settle_packets(receiver: LiveLinkReceiver, count: int) -> None:
    """Wait until ``count`` packets arrived (UDP on loopback: none is lost here)."""
    deadline = time.perf_counter() + 5
    while len(receiver.packets) < count and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
