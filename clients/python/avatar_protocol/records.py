"""Records, what the server sends for every video frame, and the parser of every server message.

Binary record layout (all little-endian, 32-byte header)::

    offset size type  field
    0      4    bytes magic b"AVTR"
    4      1    u8    version (2)
    5      1    u8    record type: 1 frame (AUs/blendshapes), 2 JPEG picture
    6      2    u16   flags: bit 0 AU section follows, bit 1 blendshape section follows
    8      4    u32   seq: records sent on this connection before this one
    12     4    u32   frame index (video frame n, from 0)
    16     8    u64   audio_sample: the instant the frame shows, in 16 kHz samples
                      from the session's start (frame n shows n * 16000 // fps)
    24     4    u32   server_latency_us: inside the server only, from the arrival of the
                      last audio the frame needed to the record being built (saturates)
    28     2    u16   n_aus: float32 values in the AU section (17 or 0)
    30     2    u16   n_blendshapes: float32 values in the blendshape section (52 or 0)
    32     ...        type 1: n_aus float32 AUs (0..5), then n_blendshapes float32 (0..1)
                      type 2: the JPEG file, to the end of the message

Section sizes come from the header and names from the ready message: this
module knows no AU or blendshape names.
"""

import base64
import binascii
import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from avatar_protocol.control import CLOCK_RATE_HZ, PROTOCOL_VERSION, End, ErrorMessage, Ready, json_object
from avatar_protocol.errors import ProtocolError
from avatar_protocol.forward import ForwardStopped

RECORD_MAGIC = b"AVTR"
RECORD_HEADER = struct.Struct("<4sBBHIIQIHH")
"""magic, version, record type, flags, seq, frame index, audio_sample, server_latency_us, n_aus, n_blendshapes."""
RECORD_FRAME = 1
RECORD_JPEG = 2
FLAG_AUS = 0x1
FLAG_BLENDSHAPES = 0x2
_U16_MAX = 0xFFFF
_U32_MAX = 0xFFFF_FFFF
_JSON_DECIMALS = 4
_HEADER_KEYS = ("seq", "index", "audio_sample", "server_latency_us")


@dataclass(frozen=True, kw_only=True)
class FrameRecord:
    """One video frame's record.

    seq: records sent before it on the connection. index: video frame number.
    audio_sample: the instant it shows, 16 kHz samples from the session's start.
    server_latency_us: time inside the server, µs (not end-to-end latency: see PROTOCOL.md).
    aus: (17,) float32 0..5, or None if not asked. blendshapes: (52,) float32 0..1, or None.
    """

    seq: int
    index: int
    audio_sample: int
    server_latency_us: int
    aus: np.ndarray | None = None
    blendshapes: np.ndarray | None = None

    @property
    def time_s(self) -> float:
        """The instant the frame shows, seconds from the session's first audio sample."""
        return self.audio_sample / CLOCK_RATE_HZ


@dataclass(frozen=True, kw_only=True)
class JpegRecord:
    """One rendered picture: the frame's header fields and a JPEG file."""

    seq: int
    index: int
    audio_sample: int
    server_latency_us: int
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
    aus = _section(record.aus, "aus")
    shapes = _section(record.blendshapes, "blendshapes")
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


ServerMessage = Ready | FrameRecord | JpegRecord | End | ErrorMessage | ForwardStopped


def parse_server_message(data: bytes | str) -> ServerMessage:
    """Any message the server sends -> its typed form (what a client calls on each message).

    Binary messages are records; text messages are JSON (ready, frame/jpeg
    records in JSON encoding, end, error, forward_stopped). Unknown keys in JSON messages are
    ignored, so that a newer server's additions do not break older clients.

    Raises:
        ProtocolError: ``bad_record`` for bytes or text that are not a valid server message.
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        return _parse_binary_record(bytes(data))
    try:
        body = json_object(data)
        kind = body.get("type")
        if kind == "frame":
            return FrameRecord(
                **_header_fields(body),
                aus=_float_array(body["aus"]) if "aus" in body else None,
                blendshapes=_float_array(body["blendshapes"]) if "blendshapes" in body else None,
            )
        if kind == "jpeg":
            return JpegRecord(**_header_fields(body), jpeg=base64.b64decode(body["data"], validate=True))
        if kind == "ready":
            return Ready.from_json_body(body)
        if kind == "end":
            return End(frames=int(body["frames"]), audio_samples=int(body["audio_samples"]))
        if kind == "error":
            return ErrorMessage(code=str(body["code"]), message=str(body["message"]))
        if kind == "forward_stopped":
            return ForwardStopped(str(body["kind"]), str(body["destination"]), str(body["message"]))
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
    fields = {"seq": seq, "index": index, "audio_sample": sample, "server_latency_us": latency}
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
        min(max(record.server_latency_us, 0), _U32_MAX),
        n_aus,
        n_shapes,
    )


def _header_json(record: FrameRecord | JpegRecord) -> dict[str, Any]:
    return {
        "seq": record.seq,
        "index": record.index,
        "audio_sample": record.audio_sample,
        "time_s": record.audio_sample / CLOCK_RATE_HZ,
        "server_latency_us": record.server_latency_us,
    }


def _header_fields(body: Mapping[str, Any]) -> dict[str, int]:
    return {key: int(body[key]) for key in _HEADER_KEYS}


def _section(values: np.ndarray | None, name: str) -> np.ndarray:
    if values is None:
        return np.zeros(0, "<f4")
    array = np.asarray(values, dtype="<f4").reshape(-1)
    if not 0 < array.size <= _U16_MAX:
        raise ValueError(f"the {name} section needs 1 to {_U16_MAX} values, got {array.size}")
    return array


def _rounded(values: np.ndarray) -> list[float]:
    return [round(float(v), _JSON_DECIMALS) for v in np.asarray(values).reshape(-1)]


def _float_array(values: Any) -> np.ndarray:
    array = np.asarray(values, dtype=np.float32)
    if array.ndim != 1:
        raise ValueError(f"expected a list of numbers, got shape {array.shape}")
    return array
