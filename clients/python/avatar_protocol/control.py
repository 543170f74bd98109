"""The text (JSON) messages of the WebSocket API: the client's hello and end, the server's ready, end and error."""

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from avatar_protocol.errors import ProtocolError
from avatar_protocol.forward import ForwardRequest, forward_json, parse_forward

PROTOCOL_VERSION = 2
"""Version 2 (see PROTOCOL.md, "Changes from version 1"); a server speaks exactly one version."""
CLOCK_RATE_HZ = 16_000
"""The audio clock of every session and of ``audio_sample`` in records (the engine's rate)."""
MIN_SAMPLE_RATE_HZ = 8_000
MAX_SAMPLE_RATE_HZ = 48_000
"""Input rates accepted: any integer in this range (the engine resamples)."""
MAX_CHANNELS = 8
MAX_FPS = 100
"""One AU frame per 10 ms mel hop at most."""

SAMPLE_FORMATS: dict[str, np.dtype] = {"s16le": np.dtype("<i2"), "f32le": np.dtype("<f4")}
"""Binary audio encodings: signed 16-bit (full scale 32768) or float32 (full scale 1.0), little-endian."""
OUTPUTS = ("aus", "blendshapes", "frames")
ENCODINGS = ("binary", "json")
BLENDSHAPE_ORDERS = ("unreal", "livelinkface")
"""Index orders of the 52 ARKit blendshapes in records: Unreal's ``EARFaceBlendShape`` (also the order of
Live Link Face's UDP packets), or the column order of the Live Link Face app's CSV takes, which swaps
jawLeft/jawRight (15/16) and mouthLeft/mouthRight (21/22). ``blendshape_names`` in ready names either."""

HELLO_KEYS = (
    "type",
    "version",
    "sample_rate_hz",
    "sample_format",
    "channels",
    "fps",
    "outputs",
    "encoding",
    "blendshape_order",
    "forward",
)


@dataclass(frozen=True, kw_only=True)
class Hello:
    """The client's first message: how its audio is encoded and what it wants back.

    sample_rate_hz: rate of the PCM the client sends, 8000..48000 Hz.
    sample_format: ``"s16le"`` or ``"f32le"``.
    channels: interleaved channels, 1..8 (averaged to mono by the engine).
    fps: AU / video frames per second, 1..100; None = the server's default.
    outputs: any of ``"aus"``, ``"blendshapes"``, ``"frames"`` (JPEG pictures).
    encoding: records as ``"binary"`` (default) or ``"json"`` text.
    blendshape_order: index order of the blendshape section, one of :data:`BLENDSHAPE_ORDERS`.
    forward: avatar apps the server should also send every frame to, kind -> the operator's name for the
        destination, or None for its first (``avatar_protocol.forward``); empty: none.
    """

    version: int = PROTOCOL_VERSION
    sample_rate_hz: int = CLOCK_RATE_HZ
    sample_format: str = "s16le"
    channels: int = 1
    fps: int | None = None
    outputs: tuple[str, ...] = ("aus",)
    encoding: str = "binary"
    blendshape_order: str = "unreal"
    forward: ForwardRequest = field(default_factory=dict)

    @property
    def sample_dtype(self) -> np.dtype:
        """The little-endian dtype of one sample on the wire."""
        return SAMPLE_FORMATS[self.sample_format]

    @property
    def frame_bytes(self) -> int:
        """Bytes per sample instant: sample size x channels."""
        return self.sample_dtype.itemsize * self.channels

    def to_json(self) -> str:
        """The hello as a client sends it (``fps`` left out when None)."""
        body: dict[str, Any] = {
            "type": "hello",
            "version": self.version,
            "sample_rate_hz": self.sample_rate_hz,
            "sample_format": self.sample_format,
            "channels": self.channels,
            "outputs": list(self.outputs),
            "encoding": self.encoding,
            "blendshape_order": self.blendshape_order,
        }
        if self.fps is not None:
            body["fps"] = self.fps
        if self.forward:
            body["forward"] = forward_json(self.forward)
        return json.dumps(body)


def parse_hello(text: str, *, default_fps: int) -> Hello:
    """Validate the client's hello; missing optional keys take their documented defaults.

    Unknown keys are refused, not ignored: a misspelt ``"sample_rate"`` would
    otherwise silently mean 16 kHz and garbage AUs. New keys come with a new
    ``version``. Integer fields accept integral JSON numbers (``16000.0``), as
    JavaScript and GDScript may write them.

    Raises:
        ProtocolError: ``bad_message`` (not a JSON object), ``bad_hello``,
            ``unsupported_version`` or ``unsupported_audio_format``.
    """
    body = json_object(text)
    kind = body.get("type")
    if kind != "hello":
        raise ProtocolError(
            "bad_hello", f'the first message must be the hello ({{"type": "hello", ...}}), got type {kind!r}'
        )
    unknown = sorted(set(body) - set(HELLO_KEYS))
    if unknown:
        raise ProtocolError(
            "bad_hello", f"unknown key(s) in hello: {', '.join(unknown)}; known keys: {', '.join(HELLO_KEYS)}"
        )
    if "version" not in body:
        raise ProtocolError("bad_hello", f'hello needs "version": {PROTOCOL_VERSION}')
    version = _integer(body["version"])
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            "unsupported_version",
            f"protocol version {body['version']!r} is not supported; this server speaks version {PROTOCOL_VERSION} "
            "(clients/PROTOCOL.md lists the changes from version 1)",
        )
    rate = _integer(body.get("sample_rate_hz", CLOCK_RATE_HZ))
    if rate is None or not MIN_SAMPLE_RATE_HZ <= rate <= MAX_SAMPLE_RATE_HZ:
        raise ProtocolError(
            "unsupported_audio_format",
            f"sample_rate_hz {body.get('sample_rate_hz')!r} is not supported; supported: any integer from "
            f"{MIN_SAMPLE_RATE_HZ} to {MAX_SAMPLE_RATE_HZ} Hz (e.g. 8000, 16000, 44100, 48000)",
        )
    sample_format = body.get("sample_format", "s16le")
    if not isinstance(sample_format, str) or sample_format not in SAMPLE_FORMATS:
        raise ProtocolError(
            "unsupported_audio_format",
            f"sample_format {sample_format!r} is not supported; supported: {', '.join(SAMPLE_FORMATS)}",
        )
    channels = _integer(body.get("channels", 1))
    if channels is None or not 1 <= channels <= MAX_CHANNELS:
        raise ProtocolError(
            "unsupported_audio_format",
            f"channels {body.get('channels')!r} is not supported; supported: integers from 1 to {MAX_CHANNELS}",
        )
    fps = _integer(body.get("fps", default_fps))
    if fps is None or not 1 <= fps <= MAX_FPS:
        raise ProtocolError(
            "bad_hello", f"fps {body.get('fps')!r} is not supported; supported: integers from 1 to {MAX_FPS}"
        )
    outputs = body.get("outputs", ["aus"])
    if (
        not isinstance(outputs, list)
        or not outputs
        or any(not isinstance(o, str) or o not in OUTPUTS for o in outputs)
        or len(set(outputs)) != len(outputs)
    ):
        raise ProtocolError(
            "bad_hello",
            f"outputs {outputs!r} is not valid; give a non-empty list of distinct names from: {', '.join(OUTPUTS)}",
        )
    encoding = body.get("encoding", "binary")
    if not isinstance(encoding, str) or encoding not in ENCODINGS:
        raise ProtocolError("bad_hello", f"encoding {encoding!r} is not supported; supported: {', '.join(ENCODINGS)}")
    order = body.get("blendshape_order", "unreal")
    if not isinstance(order, str) or order not in BLENDSHAPE_ORDERS:
        raise ProtocolError(
            "bad_hello", f"blendshape_order {order!r} is not supported; supported: {', '.join(BLENDSHAPE_ORDERS)}"
        )
    try:
        forward = parse_forward(body.get("forward", {}))
    except ValueError as exc:
        raise ProtocolError("bad_hello", str(exc)) from None
    return Hello(
        version=version,
        sample_rate_hz=rate,
        sample_format=sample_format,
        channels=channels,
        fps=fps,
        outputs=tuple(outputs),
        encoding=encoding,
        blendshape_order=order,
        forward=forward,
    )


@dataclass(frozen=True, kw_only=True)
class Ready:
    """The server's answer to a valid hello: the session runs, and this is what it sends.

    session_id: the server's name for the session (logs, metrics).
    fps: frames per second of the records. clock_rate_hz: unit of ``audio_sample`` (16000).
    outputs, encoding, blendshape_order: as granted (the hello's).
    au_names: the 17 AU section names in order if ``"aus"`` was asked, else empty.
    blendshape_names: the 52 blendshape names in ``blendshape_order`` if asked, else empty.
    lookahead_samples: audio (16 kHz samples) after a frame's instant that must have arrived before its
        record can be built: the mel window plus the network's lookahead (at most; 560 = 35 ms by default).
    idle_timeout_s: a session that receives less than half real time of audio for this long ends with error
        ``timeout``.
    frame_size_px: longer side of the JPEG pictures, if ``"frames"`` was asked, else None.
    max_message_bytes: the largest message the server accepts.
    forward: the avatar apps every frame also goes to, kind -> destination name (empty: none).
    """

    session_id: str
    fps: int
    outputs: tuple[str, ...]
    encoding: str
    max_message_bytes: int
    lookahead_samples: int
    idle_timeout_s: float
    frame_size_px: int | None = None
    clock_rate_hz: int = CLOCK_RATE_HZ
    version: int = PROTOCOL_VERSION
    au_names: tuple[str, ...] = ()
    blendshape_names: tuple[str, ...] = ()
    blendshape_order: str = "unreal"
    forward: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        body: dict[str, Any] = {
            "type": "ready",
            "version": self.version,
            "session_id": self.session_id,
            "fps": self.fps,
            "clock_rate_hz": self.clock_rate_hz,
            "outputs": list(self.outputs),
            "encoding": self.encoding,
            "max_message_bytes": self.max_message_bytes,
            "lookahead_samples": self.lookahead_samples,
            "idle_timeout_s": self.idle_timeout_s,
            "au_names": list(self.au_names),
            "blendshape_order": self.blendshape_order,
            "blendshape_names": list(self.blendshape_names),
            "forward": dict(self.forward),
        }
        if self.frame_size_px is not None:
            body["frame_size_px"] = self.frame_size_px
        return json.dumps(body)

    @classmethod
    def from_json_body(cls, body: dict[str, Any]) -> "Ready":
        """The ready message from its parsed JSON (keys it does not know are ignored)."""
        size = body.get("frame_size_px")
        return cls(
            session_id=str(body["session_id"]),
            fps=int(body["fps"]),
            outputs=tuple(body["outputs"]),
            encoding=str(body["encoding"]),
            max_message_bytes=int(body["max_message_bytes"]),
            lookahead_samples=int(body["lookahead_samples"]),
            idle_timeout_s=float(body["idle_timeout_s"]),
            frame_size_px=None if size is None else int(size),
            clock_rate_hz=int(body["clock_rate_hz"]),
            version=int(body["version"]),
            au_names=tuple(body["au_names"]),
            blendshape_names=tuple(body["blendshape_names"]),
            blendshape_order=str(body["blendshape_order"]),
            forward={str(kind): str(name) for kind, name in dict(body.get("forward") or {}).items()},
        )


@dataclass(frozen=True)
class End:
    """The server's last message before a normal close.

    frames: frame records sent in all. audio_samples: 16 kHz samples the
    session received (its duration is ``audio_samples / 16000`` s).
    """

    frames: int
    audio_samples: int

    def to_json(self) -> str:
        return json.dumps({"type": "end", "frames": self.frames, "audio_samples": self.audio_samples})


@dataclass(frozen=True)
class ErrorMessage:
    """An error the server reported (a client's view of :class:`ProtocolError`)."""

    code: str
    message: str


END_MESSAGE = json.dumps({"type": "end"})
"""The client's end-of-stream message: the server flushes the last frames and closes."""


@dataclass(frozen=True)
class EndOfStream:
    """The client said ``{"type": "end"}``: no more audio will come."""


def json_object(text: str) -> dict[str, Any]:
    """A text message as a JSON object; ``bad_message`` for anything else."""
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise ProtocolError("bad_message", f"text message is not valid JSON: {exc}") from None
    except RecursionError:
        raise ProtocolError("bad_message", "text message nests JSON too deeply") from None
    if not isinstance(body, dict):
        raise ProtocolError("bad_message", f"text message must be a JSON object, got {type(body).__name__}")
    return body


def _integer(value: object) -> int | None:
    """A JSON integer, or an integral float such as 16000.0; None for anything else (bools included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None
