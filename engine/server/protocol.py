"""The WebSocket API's messages, without I/O: bytes and strings in, bytes and strings out.

Like python-websockets' ``protocol.py``, nothing here imports asyncio or
aiohttp: :class:`ServerConnection` is a state machine that the server feeds
each received message and asks for each message to send; the client library
uses :func:`parse_server_message` and the builders. ``clients/PROTOCOL.md``
is the specification, byte by byte; this module is its implementation.

A session, as seen on the wire::

    client                                server
    text   {"type":"hello", ...}   ->
                                   <-     text   {"type":"ready", ...}
    binary PCM                     ->
    binary PCM                     ->     binary frame record (one per video frame, in order)
    ...                                   binary JPEG record (if "frames" was asked; may skip)
    text   {"type":"end"}          ->
                                   <-     the remaining frame records, then text {"type":"end", ...}
                                   <-     close 1000

Any error: text ``{"type":"error","code":...,"message":...}``, then a close
frame whose code and reason say the same (:class:`ProtocolError`).

Binary record layout (all little-endian, 32-byte header)::

    offset size type  field
    0      4    bytes magic b"AVTR"
    4      1    u8    version (1)
    5      1    u8    record type: 1 frame (AUs/blendshapes), 2 JPEG picture
    6      2    u16   flags: bit 0 AU section follows, bit 1 blendshape section follows
    8      4    u32   seq: records sent on this connection before this one
    12     4    u32   frame index (video frame n, from 0)
    16     8    u64   audio_sample: the instant the frame shows, in 16 kHz samples
                      from the session's start (frame n shows n * 16000 // fps)
    24     4    u32   latency_us: server latency, arrival of the last audio the
                      frame needed -> record built, microseconds (saturates)
    28     2    u16   n_aus: float32 values in the AU section (17 or 0)
    30     2    u16   n_blendshapes: float32 values in the blendshape section (52 or 0)
    32     ...        type 1: n_aus float32 AUs (0..5), then n_blendshapes float32 (0..1)
                      type 2: the JPEG file, to the end of the message
"""

import base64
import binascii
import json
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np

from engine.au.arkit import BLENDSHAPE_NAMES, N_BLENDSHAPES, aus_to_blendshapes
from engine.au.vocabulary import AU_NAMES, N_AUS

PROTOCOL_VERSION = 1
CLOCK_RATE_HZ = 16_000
"""The audio clock of every session and of ``audio_sample`` in records (the engine's rate)."""
MIN_SAMPLE_RATE_HZ = 8_000
MAX_SAMPLE_RATE_HZ = 48_000
"""Input rates accepted: any integer in this range (the engine's AudioConverter resamples)."""
MAX_CHANNELS = 8
MAX_FPS = 100
"""One AU frame per 10 ms mel hop at most."""

SAMPLE_FORMATS: dict[str, np.dtype] = {"s16le": np.dtype("<i2"), "f32le": np.dtype("<f4")}
"""Binary audio encodings: signed 16-bit (full scale 32768) or float32 (full scale 1.0), little-endian."""
OUTPUTS = ("aus", "blendshapes", "frames")
ENCODINGS = ("binary", "json")

RECORD_MAGIC = b"AVTR"
RECORD_HEADER = struct.Struct("<4sBBHIIQIHH")
"""magic, version, record type, flags, seq, frame index, audio_sample, latency_us, n_aus, n_blendshapes."""
RECORD_FRAME = 1
RECORD_JPEG = 2
FLAG_AUS = 0x1
FLAG_BLENDSHAPES = 0x2
_U32_MAX = 0xFFFF_FFFF
_JSON_DECIMALS = 4
_CLOSE_REASON_MAX_BYTES = 123  # RFC 6455 5.5: control frame payload 125 bytes, 2 of them the code


class CloseCode(IntEnum):
    """WebSocket close codes the server uses (RFC 6455 7.4.1; 1013 from the IANA registry)."""

    NORMAL = 1000
    UNSUPPORTED_DATA = 1003
    INVALID_PAYLOAD = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013


class ProtocolError(ValueError):
    """A message the protocol refuses, or a session that cannot go on.

    code: a stable machine-readable name (PROTOCOL.md lists them all).
    message: what was wrong and what is accepted, for a person.
    close_code: the WebSocket close code the connection ends with.
    """

    def __init__(self, code: str, message: str, close_code: int = CloseCode.POLICY_VIOLATION) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.close_code = int(close_code)

    def to_json(self) -> str:
        """The error message sent before the close frame."""
        return json.dumps({"type": "error", "code": self.code, "message": self.message})

    @property
    def close_reason(self) -> str:
        """The message, cut to the 123 UTF-8 bytes a close frame can carry."""
        return close_reason(self.message)


def close_reason(message: str) -> str:
    """``message`` cut (on a character boundary) to fit a close frame's reason."""
    raw = message.encode("utf-8")
    if len(raw) <= _CLOSE_REASON_MAX_BYTES:
        return message
    return raw[: _CLOSE_REASON_MAX_BYTES - 3].decode("utf-8", errors="ignore") + "..."


def server_full(message: str) -> ProtocolError:
    """All session slots are taken: close 1013, retry later."""
    return ProtocolError("server_full", message, CloseCode.TRY_AGAIN_LATER)


def timeout_error(message: str) -> ProtocolError:
    """The client sent nothing for too long (no hello, or no audio)."""
    return ProtocolError("timeout", message, CloseCode.POLICY_VIOLATION)


def message_too_big(size_bytes: int | None, limit_bytes: int) -> ProtocolError:
    """A message over ``max_message_bytes``; ``size_bytes`` None when only the limit is known."""
    size = "a message" if size_bytes is None else f"a message of {size_bytes} bytes"
    return ProtocolError(
        "message_too_big",
        f"{size} exceeds the limit of {limit_bytes} bytes (max_message_bytes in ready); "
        "send audio in smaller messages, e.g. 20 ms each",
        CloseCode.MESSAGE_TOO_BIG,
    )


def internal_error(message: str = "internal server error; the session was ended") -> ProtocolError:
    return ProtocolError("internal_error", message, CloseCode.INTERNAL_ERROR)


# ---------------------------------------------------------------- hello and ready


@dataclass(frozen=True, kw_only=True)
class Hello:
    """The client's first message: how its audio is encoded and what it wants back.

    sample_rate_hz: rate of the PCM the client sends, 8000..48000 Hz.
    sample_format: ``"s16le"`` or ``"f32le"``.
    channels: interleaved channels, 1..8 (averaged to mono by the engine).
    fps: AU / video frames per second, 1..100; None = the server's default.
    outputs: any of ``"aus"``, ``"blendshapes"``, ``"frames"`` (JPEG pictures).
    encoding: records as ``"binary"`` (default) or ``"json"`` text.
    """

    version: int = PROTOCOL_VERSION
    sample_rate_hz: int = CLOCK_RATE_HZ
    sample_format: str = "s16le"
    channels: int = 1
    fps: int | None = None
    outputs: tuple[str, ...] = ("aus",)
    encoding: str = "binary"

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
        }
        if self.fps is not None:
            body["fps"] = self.fps
        return json.dumps(body)


HELLO_KEYS = ("type", "version", "sample_rate_hz", "sample_format", "channels", "fps", "outputs", "encoding")


def parse_hello(text: str, *, default_fps: int) -> Hello:
    """Validate the client's hello; missing optional keys take their documented defaults.

    Unknown keys are refused, not ignored: a misspelt ``"sample_rate"`` would
    otherwise silently mean 16 kHz and garbage AUs. New keys come with a new
    ``version``.

    Raises:
        ProtocolError: ``bad_message`` (not a JSON object with a type),
            ``bad_hello``, ``unsupported_version`` or ``unsupported_audio_format``.
    """
    body = _json_object(text)
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
    version = body["version"]
    if not _is_int(version) or version != PROTOCOL_VERSION:
        raise ProtocolError(
            "unsupported_version",
            f"protocol version {version!r} is not supported; this server speaks version {PROTOCOL_VERSION}",
        )
    rate = body.get("sample_rate_hz", CLOCK_RATE_HZ)
    if not _is_int(rate) or not MIN_SAMPLE_RATE_HZ <= rate <= MAX_SAMPLE_RATE_HZ:
        raise ProtocolError(
            "unsupported_audio_format",
            f"sample_rate_hz {rate!r} is not supported; supported: any integer from {MIN_SAMPLE_RATE_HZ} "
            f"to {MAX_SAMPLE_RATE_HZ} Hz (e.g. 8000, 16000, 44100, 48000)",
        )
    sample_format = body.get("sample_format", "s16le")
    if not isinstance(sample_format, str) or sample_format not in SAMPLE_FORMATS:
        raise ProtocolError(
            "unsupported_audio_format",
            f"sample_format {sample_format!r} is not supported; supported: {', '.join(SAMPLE_FORMATS)}",
        )
    channels = body.get("channels", 1)
    if not _is_int(channels) or not 1 <= channels <= MAX_CHANNELS:
        raise ProtocolError(
            "unsupported_audio_format",
            f"channels {channels!r} is not supported; supported: integers from 1 to {MAX_CHANNELS}",
        )
    fps = body.get("fps", default_fps)
    if not _is_int(fps) or not 1 <= fps <= MAX_FPS:
        raise ProtocolError("bad_hello", f"fps {fps!r} is not supported; supported: integers from 1 to {MAX_FPS}")
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
    return Hello(
        version=version,
        sample_rate_hz=rate,
        sample_format=sample_format,
        channels=channels,
        fps=fps,
        outputs=tuple(outputs),
        encoding=encoding,
    )


@dataclass(frozen=True, kw_only=True)
class Ready:
    """The server's answer to a valid hello: the session runs, and this is what it sends.

    session_id: the server's name for the session (logs, metrics).
    fps: frames per second of the records. clock_rate_hz: unit of ``audio_sample`` (16000).
    outputs, encoding: as granted (the hello's).
    au_names: the 17 AU section names in order. blendshape_names: the 52, if asked, else empty.
    frame_size_px: side of the square JPEG pictures, if ``"frames"`` was asked, else None.
    max_message_bytes: the largest message the server accepts.
    """

    session_id: str
    fps: int
    outputs: tuple[str, ...]
    encoding: str
    max_message_bytes: int
    frame_size_px: int | None = None
    clock_rate_hz: int = CLOCK_RATE_HZ
    version: int = PROTOCOL_VERSION
    au_names: tuple[str, ...] = AU_NAMES
    blendshape_names: tuple[str, ...] = ()

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
            "au_names": list(self.au_names),
            "blendshape_names": list(self.blendshape_names),
        }
        if self.frame_size_px is not None:
            body["frame_size_px"] = self.frame_size_px
        return json.dumps(body)


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


# ---------------------------------------------------------------- audio in


@dataclass(frozen=True)
class AudioChunk:
    """Audio received: (n, channels) int16 (s16le) or float32 (f32le), native byte order."""

    samples: np.ndarray


def decode_audio(data: bytes, hello: Hello) -> AudioChunk:
    """One binary message -> samples, validated against the hello's format.

    Raises:
        ProtocolError: ``truncated_audio`` when the length is not a whole number
            of sample instants; ``bad_audio`` for NaN/Inf float samples.
    """
    frame_bytes = hello.frame_bytes
    left_over = len(data) % frame_bytes
    if left_over:
        size = hello.sample_dtype.itemsize
        raise ProtocolError(
            "truncated_audio",
            f"binary message of {len(data)} bytes is not a whole number of sample frames: {hello.sample_format} "
            f"with {hello.channels} channel(s) needs a multiple of {frame_bytes} bytes ({size} bytes per sample "
            f"x {hello.channels}); {left_over} byte(s) left over",
            CloseCode.INVALID_PAYLOAD,
        )
    native = hello.sample_dtype.newbyteorder("=")
    samples = np.frombuffer(data, dtype=hello.sample_dtype).astype(native, copy=False)
    if samples.dtype.kind == "f" and not np.isfinite(samples).all():
        raise ProtocolError(
            "bad_audio",
            "f32le audio contains NaN or Inf samples; send finite values, full scale 1.0",
            CloseCode.INVALID_PAYLOAD,
        )
    return AudioChunk(samples.reshape(-1, hello.channels))


def encode_audio(samples: np.ndarray, sample_format: str = "s16le") -> bytes:
    """Samples -> one binary message (the client side of :func:`decode_audio`).

    Args:
        samples: (n,) mono or (n, channels) rows of interleaved samples; int16
            for s16le (float input is scaled by 32767 and clipped), float for f32le.
    """
    dtype = SAMPLE_FORMATS[sample_format]
    x = np.asarray(samples)
    if dtype.kind == "i" and x.dtype.kind == "f":
        x = np.clip(np.round(x * 32767.0), -32768, 32767)
    return np.ascontiguousarray(x, dtype=dtype).tobytes()


# ---------------------------------------------------------------- records out


@dataclass(frozen=True, kw_only=True)
class FrameRecord:
    """One video frame's AU record.

    seq: records sent before it on the connection. index: video frame number.
    audio_sample: the instant it shows, 16 kHz samples. latency_us: server latency, µs.
    aus: (17,) float32 0..5, or None if not asked. blendshapes: (52,) float32 0..1, or None.
    """

    seq: int
    index: int
    audio_sample: int
    latency_us: int
    aus: np.ndarray | None = None
    blendshapes: np.ndarray | None = None

    @property
    def time_s(self) -> float:
        """The instant the frame shows, seconds from the session's start."""
        return self.audio_sample / CLOCK_RATE_HZ


@dataclass(frozen=True, kw_only=True)
class JpegRecord:
    """One rendered picture: the frame's header fields and a JPEG file."""

    seq: int
    index: int
    audio_sample: int
    latency_us: int
    jpeg: bytes = field(repr=False)

    @property
    def time_s(self) -> float:
        return self.audio_sample / CLOCK_RATE_HZ


def encode_frame_record(record: FrameRecord, encoding: str = "binary") -> bytes | str:
    """A frame record as a binary message (header + float32 sections) or JSON text."""
    if encoding == "json":
        body: dict[str, Any] = {"type": "frame", **_header_json(record)}
        if record.aus is not None:
            body["aus"] = _rounded(record.aus)
        if record.blendshapes is not None:
            body["blendshapes"] = _rounded(record.blendshapes)
        return json.dumps(body)
    aus = _section(record.aus, N_AUS, "aus")
    shapes = _section(record.blendshapes, N_BLENDSHAPES, "blendshapes")
    flags = (FLAG_AUS if record.aus is not None else 0) | (FLAG_BLENDSHAPES if record.blendshapes is not None else 0)
    header = _header(RECORD_FRAME, flags, record, aus.size, shapes.size)
    return header + aus.tobytes() + shapes.tobytes()


def encode_jpeg_record(record: JpegRecord, encoding: str = "binary") -> bytes | str:
    """A JPEG record as a binary message (header + JPEG file) or JSON text (base64 ``data``)."""
    if encoding == "json":
        return json.dumps(
            {"type": "jpeg", **_header_json(record), "data": base64.b64encode(record.jpeg).decode("ascii")}
        )
    return _header(RECORD_JPEG, 0, record, 0, 0) + record.jpeg


ServerMessage = Ready | FrameRecord | JpegRecord | End | ErrorMessage


def parse_server_message(data: bytes | str) -> ServerMessage:
    """Any message the server sends -> its typed form (what a client calls on each message).

    Binary messages are records; text messages are JSON (ready, frame/jpeg
    records in JSON encoding, end, error). Unknown keys in JSON messages are
    ignored, so that a newer server's additions do not break older clients.

    Raises:
        ProtocolError: ``bad_record`` for bytes or text that are not a valid server message.
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        return _parse_binary_record(bytes(data))
    try:
        body = _json_object(data)
        kind = body.get("type")
        if kind == "frame":
            return FrameRecord(
                **_header_fields(body),
                aus=_float_array(body["aus"], N_AUS) if "aus" in body else None,
                blendshapes=_float_array(body["blendshapes"], N_BLENDSHAPES) if "blendshapes" in body else None,
            )
        if kind == "jpeg":
            return JpegRecord(**_header_fields(body), jpeg=base64.b64decode(body["data"], validate=True))
        if kind == "ready":
            size = body.get("frame_size_px")
            return Ready(
                session_id=str(body["session_id"]),
                fps=int(body["fps"]),
                outputs=tuple(body["outputs"]),
                encoding=str(body["encoding"]),
                max_message_bytes=int(body["max_message_bytes"]),
                frame_size_px=None if size is None else int(size),
                clock_rate_hz=int(body["clock_rate_hz"]),
                version=int(body["version"]),
                au_names=tuple(body["au_names"]),
                blendshape_names=tuple(body.get("blendshape_names", ())),
            )
        if kind == "end":
            return End(frames=int(body["frames"]), audio_samples=int(body["audio_samples"]))
        if kind == "error":
            return ErrorMessage(code=str(body["code"]), message=str(body["message"]))
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise ProtocolError("bad_record", f"malformed server message: {exc!r}") from None
    raise ProtocolError("bad_record", f"unknown server message type {kind!r}")


def _parse_binary_record(data: bytes) -> FrameRecord | JpegRecord:
    if len(data) < RECORD_HEADER.size:
        raise ProtocolError("bad_record", f"binary record of {len(data)} bytes is shorter than its 32-byte header")
    magic, version, kind, flags, seq, index, sample, latency, n_aus, n_shapes = RECORD_HEADER.unpack_from(data)
    if magic != RECORD_MAGIC:
        raise ProtocolError("bad_record", f"binary record starts with {magic!r}, not the magic {RECORD_MAGIC!r}")
    if version != PROTOCOL_VERSION:
        raise ProtocolError("bad_record", f"binary record version {version}; this parser reads {PROTOCOL_VERSION}")
    fields = {"seq": seq, "index": index, "audio_sample": sample, "latency_us": latency}
    if kind == RECORD_JPEG:
        return JpegRecord(**fields, jpeg=data[RECORD_HEADER.size :])
    if kind != RECORD_FRAME:
        raise ProtocolError("bad_record", f"unknown binary record type {kind}")
    expected = RECORD_HEADER.size + 4 * (n_aus + n_shapes)
    if len(data) != expected:
        raise ProtocolError(
            "bad_record",
            f"frame record of {len(data)} bytes; its header announces {expected} "
            f"(32 + 4 x ({n_aus} AUs + {n_shapes} blendshapes))",
        )
    if bool(flags & FLAG_AUS) != (n_aus > 0) or bool(flags & FLAG_BLENDSHAPES) != (n_shapes > 0):
        raise ProtocolError("bad_record", f"frame record flags {flags:#x} disagree with its counts {n_aus}, {n_shapes}")
    values = np.frombuffer(data, dtype="<f4", offset=RECORD_HEADER.size).astype(np.float32)
    return FrameRecord(
        **fields,
        aus=values[:n_aus] if n_aus else None,
        blendshapes=values[n_aus:] if n_shapes else None,
    )


def _header(kind: int, flags: int, record: FrameRecord | JpegRecord, n_aus: int, n_shapes: int) -> bytes:
    return RECORD_HEADER.pack(
        RECORD_MAGIC,
        PROTOCOL_VERSION,
        kind,
        flags,
        record.seq,
        record.index,
        record.audio_sample,
        min(max(record.latency_us, 0), _U32_MAX),
        n_aus,
        n_shapes,
    )


def _header_json(record: FrameRecord | JpegRecord) -> dict[str, Any]:
    return {
        "seq": record.seq,
        "index": record.index,
        "audio_sample": record.audio_sample,
        "time_s": record.audio_sample / CLOCK_RATE_HZ,
        "latency_us": record.latency_us,
    }


def _header_fields(body: Mapping[str, Any]) -> dict[str, int]:
    return {key: int(body[key]) for key in ("seq", "index", "audio_sample", "latency_us")}


def _section(values: np.ndarray | None, size: int, name: str) -> np.ndarray:
    if values is None:
        return np.zeros(0, "<f4")
    array = np.asarray(values, dtype="<f4").reshape(-1)
    if array.size != size:
        raise ValueError(f"{name} section needs {size} values, got {array.size}")
    return array


def _rounded(values: np.ndarray) -> list[float]:
    return [round(float(v), _JSON_DECIMALS) for v in np.asarray(values).reshape(-1)]


def _float_array(values: Any, size: int) -> np.ndarray:
    array = np.asarray(values, dtype=np.float32)
    if array.shape != (size,):
        raise ValueError(f"expected {size} values, got shape {array.shape}")
    return array


def _json_object(text: str) -> dict[str, Any]:
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise ProtocolError("bad_message", f"text message is not valid JSON: {exc}") from None
    except RecursionError:
        raise ProtocolError("bad_message", "text message nests JSON too deeply") from None
    if not isinstance(body, dict):
        raise ProtocolError("bad_message", f"text message must be a JSON object, got {type(body).__name__}")
    return body


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# ---------------------------------------------------------------- the server's state machine


class ServerConnection:
    """One WebSocket session's protocol state, with no I/O.

    Feed every received message to :meth:`receive`; it returns what the
    message meant (:class:`Hello`, :class:`AudioChunk`, :class:`EndOfStream`)
    or raises :class:`ProtocolError`, after which
    the connection must send ``error.to_json()`` and close with
    ``error.close_code``. Build outgoing messages with :meth:`ready`,
    :meth:`frame`, :meth:`jpeg` and :meth:`end`; they number records in the
    order they are built, so send them in that order.

    States: ``"hello"`` (waiting for it) -> ``"streaming"`` -> ``"ended"``.
    """

    def __init__(self, *, max_message_bytes: int, default_fps: int) -> None:
        self.max_message_bytes = max_message_bytes
        self.default_fps = default_fps
        self.state = "hello"
        self.hello: Hello | None = None
        self.frames_sent = 0
        self._seq = 0

    def receive(self, data: bytes | str) -> Hello | AudioChunk | EndOfStream:
        """Interpret one received message (binary: bytes; text: str)."""
        size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8"))
        if size > self.max_message_bytes:
            raise message_too_big(size, self.max_message_bytes)
        if self.state == "hello":
            if not isinstance(data, str):
                raise ProtocolError(
                    "unexpected_binary",
                    "the first message must be the hello, a text message with JSON; audio may follow the ready",
                    CloseCode.UNSUPPORTED_DATA,
                )
            self.hello = parse_hello(data, default_fps=self.default_fps)
            self.state = "streaming"
            return self.hello
        if self.state == "ended":
            raise ProtocolError("unexpected_message", "nothing may follow the end message")
        assert self.hello is not None
        if isinstance(data, bytes):
            return decode_audio(data, self.hello)
        try:
            body = _json_object(data)
        except ProtocolError:
            body = {}
        if body.get("type") == "end":
            if len(body) > 1:
                raise ProtocolError("bad_message", 'the end message is exactly {"type": "end"}, with no other keys')
            self.state = "ended"
            return EndOfStream()
        raise ProtocolError(
            "unexpected_text",
            f"audio must be sent as binary messages of {self.hello.sample_format} PCM; the only text message "
            'after the hello is {"type": "end"}',
            CloseCode.UNSUPPORTED_DATA,
        )

    @property
    def outputs(self) -> tuple[str, ...]:
        return () if self.hello is None else self.hello.outputs

    @property
    def encoding(self) -> str:
        return "binary" if self.hello is None else self.hello.encoding

    def ready(self, session_id: str, *, frame_size_px: int | None = None) -> str:
        """The ready message for the accepted hello."""
        assert self.hello is not None and self.hello.fps is not None, "ready() before a valid hello"
        return Ready(
            session_id=session_id,
            fps=self.hello.fps,
            outputs=self.hello.outputs,
            encoding=self.hello.encoding,
            max_message_bytes=self.max_message_bytes,
            frame_size_px=frame_size_px if "frames" in self.hello.outputs else None,
            blendshape_names=BLENDSHAPE_NAMES if "blendshapes" in self.hello.outputs else (),
        ).to_json()

    def frame(self, index: int, audio_sample: int, latency_us: int, aus: np.ndarray) -> bytes | str:
        """The record of AU frame ``index``: aus (17,) in 0..5; sections as the hello asked."""
        record = FrameRecord(
            seq=self._next_seq(),
            index=index,
            audio_sample=audio_sample,
            latency_us=latency_us,
            aus=np.asarray(aus, np.float32) if "aus" in self.outputs else None,
            blendshapes=aus_to_blendshapes(aus) if "blendshapes" in self.outputs else None,
        )
        self.frames_sent += 1
        return encode_frame_record(record, self.encoding)

    def jpeg(self, index: int, audio_sample: int, latency_us: int, jpeg: bytes) -> bytes | str:
        """The record of a rendered picture of frame ``index``."""
        record = JpegRecord(
            seq=self._next_seq(), index=index, audio_sample=audio_sample, latency_us=latency_us, jpeg=jpeg
        )
        return encode_jpeg_record(record, self.encoding)

    def end(self, audio_samples: int) -> str:
        """The end message: how many frame records were sent and how much audio arrived."""
        return End(frames=self.frames_sent, audio_samples=audio_samples).to_json()

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq = (self._seq + 1) & _U32_MAX
        return seq


def elapsed_us(arrival_s: float, now_s: float) -> int:
    """Microseconds from ``arrival_s`` to ``now_s`` (both ``time.perf_counter()``), 0 if negative."""
    return max(0, int(math.floor((now_s - arrival_s) * 1e6)))
