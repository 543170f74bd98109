"""VTube Studio output: a session's face injected into VTube Studio through its public plugin API.

VTube Studio (Live2D avatars) runs a WebSocket API, ``ws://localhost:8001``
by default, documented in DenchiSoft/VTubeStudio's README. As a plugin this
output:

1. authenticates: the first time, an ``AuthenticationTokenRequest`` makes
   VTube Studio ask its user to allow the plugin; the token it returns is
   stored in ``token_path`` and every later connection only sends an
   ``AuthenticationRequest`` with it (a revoked token is asked for again);
2. creates its custom parameters once per connection (``ParameterCreationRequest``;
   VTube Studio keeps them, and re-creating its own is allowed): ``AvatarAU01``
   ... ``AvatarAU45``, the 17 AU intensities, range 0..5, which the user maps
   to Live2D parameters in VTube Studio like any tracking input;
3. sends an ``InjectParameterDataRequest`` (``mode`` "set", ``faceFound``
   true) for every AU frame, with the 17 custom parameters and VTube Studio's
   own ``MouthOpen`` (0..1, ARKit's jawOpen from :mod:`engine.au.arkit`), so
   that a model's default mouth mapping follows the speech with no setup.
   VTube Studio drops injected values it has not heard about for a second,
   so the last values are re-sent whenever frames pause (:data:`KEEPALIVE_S`).

The URL comes from the operator's allowed destinations
(:mod:`engine.output.destinations`), never from a client.
"""

import asyncio
import contextlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from engine.au.arkit import BLENDSHAPE_NAMES, aus_to_blendshapes
from engine.au.vocabulary import AU_MAX_INTENSITY, AU_NAMES
from engine.errors import EngineError
from engine.output.errors import OutputUnavailable
from engine.pipeline.frames import AUFrame

log = logging.getLogger(__name__)

API_NAME = "VTubeStudioPublicAPI"
API_VERSION = "1.0"
PLUGIN_NAME = "Avatar Engine"
PLUGIN_DEVELOPER = "avatar-engine project"
"""Shown to the VTube Studio user when the plugin asks for access (3..32 characters each)."""
CUSTOM_PARAMETERS: tuple[str, ...] = tuple(f"Avatar{au}" for au in AU_NAMES)
"""Our custom tracking parameters, one per AU (alphanumeric, 4..32 characters, as VTube Studio requires)."""
MOUTH_OPEN = "MouthOpen"
"""VTube Studio's own mouth-opening input (0..1); injecting it overrides face tracking's."""
KEEPALIVE_S = 0.5
"""Re-send the last values after this long without a frame: VTube Studio forgets them after 1 s."""
APPROVAL_TIMEOUT_S = 120.0
"""How long the first connection waits for the VTube Studio user to allow the plugin."""
REQUEST_TIMEOUT_S = 10.0
DEFAULT_TOKEN_PATH = Path.home() / ".config" / "avatar-engine" / "vtube-studio-token.json"
"""Where the plugin token is kept by default (readable by this user only: it lets a program drive VTube Studio)."""

_JAW_OPEN = BLENDSHAPE_NAMES.index("jawOpen")


class VTubeStudioError(EngineError, RuntimeError):
    """VTube Studio answered a request with an ``APIError`` (its errorID and message are in the text)."""


def parameter_values(frame: AUFrame) -> list[dict[str, Any]]:
    """The ``parameterValues`` of one frame's ``InjectParameterDataRequest``."""
    values = [{"id": name, "value": round(float(v), 4)} for name, v in zip(CUSTOM_PARAMETERS, frame.aus)]
    mouth_open = float(aus_to_blendshapes(frame.aus)[_JAW_OPEN])
    return [*values, {"id": MOUTH_OPEN, "value": round(mouth_open, 4)}]


class VTubeStudioOutput:
    """An :class:`engine.live.outputs.AUOutput` driving VTube Studio. Create it with :meth:`connect`."""

    name = "vts"

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._next_id = 0
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._error: VTubeStudioError | None = None
        self._last_values: list[dict[str, Any]] | None = None
        self._last_sent_s = time.perf_counter()
        self.injections_sent = 0
        self._reader = asyncio.create_task(self._read(), name="vts-reader")
        self._keepalive: asyncio.Task[None] | None = None

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        token_path: Path,
        approval_timeout_s: float = APPROVAL_TIMEOUT_S,
    ) -> "VTubeStudioOutput":
        """Connect, authenticate (asking the user the first time), create the parameters.

        Raises:
            OutputUnavailable: VTube Studio is not reachable, or its user denied the plugin.
            VTubeStudioError: VTube Studio refused a request.
        """
        try:
            ws = await connect(url, compression=None, proxy=None, open_timeout=REQUEST_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            raise OutputUnavailable(
                f"cannot reach VTube Studio at {url} ({exc}); start it and switch on its plugin API "
                "(Settings: 'Start API')"
            ) from None
        output = cls(ws)
        try:
            await output._authenticate(token_path, approval_timeout_s)
            for name in CUSTOM_PARAMETERS:
                await output._request(
                    "ParameterCreationRequest",
                    {
                        "parameterName": name,
                        "explanation": f"{name[6:]} intensity from speech (0..5), by the avatar engine",
                        "min": 0,
                        "max": AU_MAX_INTENSITY,
                        "defaultValue": 0,
                    },
                )
        except BaseException:
            await output.close()
            raise
        output._keepalive = asyncio.create_task(output._keep_alive(), name="vts-keepalive")
        return output

    async def send_aus(self, frame: AUFrame) -> None:
        """Inject ``frame``'s values now (not waiting for VTube Studio's answer, which the reader checks)."""
        if self._error is not None:
            raise self._error
        self._last_values = parameter_values(frame)
        await self._inject(self._last_values)

    async def close(self) -> None:
        for task in (self._keepalive, self._reader):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self._ws.close()

    async def _inject(self, values: list[dict[str, Any]]) -> None:
        body = {"faceFound": True, "mode": "set", "parameterValues": values}
        self._last_sent_s = time.perf_counter()
        await self._ws.send(json.dumps(self._envelope("InjectParameterDataRequest", body)))
        self.injections_sent += 1

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(max(0.0, self._last_sent_s + KEEPALIVE_S - time.perf_counter()))
            if self._last_values is not None and time.perf_counter() - self._last_sent_s >= KEEPALIVE_S:
                await self._inject(self._last_values)

    async def _authenticate(self, token_path: Path, approval_timeout_s: float) -> None:
        token = _read_token(token_path)
        if token is not None and await self._authenticated_with(token):
            return
        log.info("asking VTube Studio's user to allow the plugin %r (once)", PLUGIN_NAME)
        try:
            answer = await self._request(
                "AuthenticationTokenRequest",
                {"pluginName": PLUGIN_NAME, "pluginDeveloper": PLUGIN_DEVELOPER},
                timeout_s=approval_timeout_s,
            )
        except VTubeStudioError as exc:
            raise OutputUnavailable(f"VTube Studio did not allow the plugin: {exc}") from None
        token = str(answer["authenticationToken"])
        _write_token(token_path, token)
        if not await self._authenticated_with(token):
            raise OutputUnavailable("VTube Studio refused the token it had just given; allow the plugin again")

    async def _authenticated_with(self, token: str) -> bool:
        answer = await self._request(
            "AuthenticationRequest",
            {"pluginName": PLUGIN_NAME, "pluginDeveloper": PLUGIN_DEVELOPER, "authenticationToken": token},
        )
        return bool(answer.get("authenticated"))

    async def _request(
        self, kind: str, data: dict[str, Any], *, timeout_s: float = REQUEST_TIMEOUT_S
    ) -> dict[str, Any]:
        envelope = self._envelope(kind, data)
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[envelope["requestID"]] = answer
        await self._ws.send(json.dumps(envelope))
        try:
            return await asyncio.wait_for(answer, timeout_s)
        except TimeoutError:
            raise OutputUnavailable(f"VTube Studio did not answer {kind} within {timeout_s:g} s") from None
        finally:
            self._pending.pop(envelope["requestID"], None)

    def _envelope(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        return {
            "apiName": API_NAME,
            "apiVersion": API_VERSION,
            "requestID": f"avatar-{self._next_id}",
            "messageType": kind,
            "data": data,
        }

    async def _read(self) -> None:
        """Route answers to the requests waiting for them; remember an error answer to an injection."""
        try:
            async for text in self._ws:
                try:
                    message = json.loads(text)
                    data = dict(message.get("data") or {})
                except (ValueError, TypeError, AttributeError):
                    self._error = VTubeStudioError(f"unreadable message from VTube Studio: {str(text)[:80]!r}")
                    continue
                waiting = self._pending.get(str(message.get("requestID")))
                if message.get("messageType") == "APIError":
                    error = VTubeStudioError(f"error {data.get('errorID')}: {data.get('message')}")
                    if waiting is not None and not waiting.done():
                        waiting.set_exception(error)
                    else:
                        self._error = error
                elif waiting is not None and not waiting.done():
                    waiting.set_result(data)
        except ConnectionClosed:
            pass
        gone = VTubeStudioError("VTube Studio closed the connection")
        self._error = self._error or gone
        for waiting in self._pending.values():
            if not waiting.done():
                waiting.set_exception(gone)


def _read_token(path: Path) -> str | None:
    try:
        return str(json.loads(path.read_text(encoding="utf-8"))["authenticationToken"])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        log.warning("ignoring unreadable VTube Studio token file %s", path)
        return None


def _write_token(path: Path, token: str) -> None:
    """Store the token where only this user can read it (it lets any process control VTube Studio)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump({"authenticationToken": token}, file)
