"""The avatar engine's WebSocket wire format, without I/O and without the engine.

``clients/PROTOCOL.md`` is the specification, byte by byte; this package is
its implementation, shared by the server (``engine.server.protocol`` builds
its state machine on it) and by clients (``avatar_client``). It needs only
numpy: bytes and strings in, bytes and strings out, no asyncio, no sockets.

    from avatar_protocol import FrameRecord, parse_server_message
    record = parse_server_message(binary_message)   # a FrameRecord, with .aus and .blendshapes
"""

from avatar_protocol.audio import AudioChunk, decode_audio, encode_audio
from avatar_protocol.control import (
    BLENDSHAPE_ORDERS,
    CLOCK_RATE_HZ,
    ENCODINGS,
    END_MESSAGE,
    HELLO_KEYS,
    MAX_CHANNELS,
    MAX_FPS,
    MAX_SAMPLE_RATE_HZ,
    MIN_SAMPLE_RATE_HZ,
    OUTPUTS,
    PROTOCOL_VERSION,
    SAMPLE_FORMATS,
    End,
    EndOfStream,
    ErrorMessage,
    Hello,
    Ready,
    json_object,
    parse_hello,
)
from avatar_protocol.errors import (
    CloseCode,
    ProtocolError,
    close_reason,
    forward_refused,
    forward_unavailable,
    internal_error,
    message_too_big,
    server_full,
    timeout_error,
)
from avatar_protocol.forward import FORWARD_KINDS, ForwardRequest, ForwardStopped, parse_forward
from avatar_protocol.records import (
    FLAG_AUS,
    FLAG_BLENDSHAPES,
    RECORD_FRAME,
    RECORD_HEADER,
    RECORD_JPEG,
    RECORD_MAGIC,
    FrameRecord,
    JpegRecord,
    ServerMessage,
    encode_frame_record,
    encode_jpeg_record,
    parse_server_message,
)

__all__ = [
    "BLENDSHAPE_ORDERS",
    "CLOCK_RATE_HZ",
    "ENCODINGS",
    "END_MESSAGE",
    "FLAG_AUS",
    "FLAG_BLENDSHAPES",
    "FORWARD_KINDS",
    "HELLO_KEYS",
    "MAX_CHANNELS",
    "MAX_FPS",
    "MAX_SAMPLE_RATE_HZ",
    "MIN_SAMPLE_RATE_HZ",
    "OUTPUTS",
    "PROTOCOL_VERSION",
    "RECORD_FRAME",
    "RECORD_HEADER",
    "RECORD_JPEG",
    "RECORD_MAGIC",
    "SAMPLE_FORMATS",
    "AudioChunk",
    "CloseCode",
    "End",
    "EndOfStream",
    "ErrorMessage",
    "ForwardRequest",
    "ForwardStopped",
    "FrameRecord",
    "Hello",
    "JpegRecord",
    "ProtocolError",
    "Ready",
    "ServerMessage",
    "close_reason",
    "decode_audio",
    "encode_audio",
    "encode_frame_record",
    "encode_jpeg_record",
    "forward_refused",
    "forward_unavailable",
    "internal_error",
    "json_object",
    "message_too_big",
    "parse_forward",
    "parse_hello",
    "parse_server_message",
    "server_full",
    "timeout_error",
]
