"""The WebSocket API's server side, without I/O: the session state machine over the wire codec.

The wire format itself (messages, record layouts, errors) is the
``avatar_protocol`` package (clients/python/), which clients use without the
engine; ``clients/PROTOCOL.md`` is its specification. This module adds what
only the server needs: :class:`ServerConnection`, the per-connection state
machine that the server feeds each received message and asks for each
message to send (like python-websockets' ``protocol.py``, it imports no
asyncio), the engine's AU and blendshape vocabulary in those messages, and
:func:`elapsed_us` for the records' server latency.

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

The codec's names are re-exported here, so that server code imports one module.
"""

import math
from collections.abc import Sequence

import numpy as np

from avatar_protocol import (
    CLOCK_RATE_HZ,
    END_MESSAGE,
    PROTOCOL_VERSION,
    AudioChunk,
    CloseCode,
    End,
    EndOfStream,
    ForwardStopped,
    FrameRecord,
    Hello,
    JpegRecord,
    ProtocolError,
    Ready,
    close_reason,
    decode_audio,
    encode_frame_record,
    encode_jpeg_record,
    forward_refused,
    forward_unavailable,
    internal_error,
    json_object,
    message_too_big,
    parse_hello,
    server_full,
    timeout_error,
)
from engine.au.arkit import BLENDSHAPE_ORDERS, aus_to_blendshapes, order_indices
from engine.au.vocabulary import AU_NAMES

__all__ = [
    "CLOCK_RATE_HZ",
    "END_MESSAGE",
    "PROTOCOL_VERSION",
    "AudioChunk",
    "CloseCode",
    "EndOfStream",
    "Hello",
    "ProtocolError",
    "ServerConnection",
    "close_reason",
    "elapsed_us",
    "forward_refused",
    "forward_unavailable",
    "internal_error",
    "message_too_big",
    "server_full",
    "timeout_error",
]

_U32_MAX = 0xFFFF_FFFF


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
    In ``"ended"`` every message is refused (``unexpected_message``).

    max_message_bytes: the largest message accepted. default_fps: records per
    second when the hello names none. idle_timeout_s: the server's idle
    timeout, announced in ready.
    """

    def __init__(self, *, max_message_bytes: int, default_fps: int, idle_timeout_s: float) -> None:
        self.max_message_bytes = max_message_bytes
        self.default_fps = default_fps
        self.idle_timeout_s = idle_timeout_s
        self.state = "hello"
        self.hello: Hello | None = None
        self.frames_sent = 0
        self._seq = 0
        self._blendshape_indices = order_indices("unreal")

    def receive(self, data: bytes | str) -> Hello | AudioChunk | EndOfStream:
        """Interpret one received message (binary: bytes; text: str)."""
        if self.state == "ended":
            raise ProtocolError("unexpected_message", 'nothing may follow the end message ({"type": "end"})')
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
            self._blendshape_indices = order_indices(self.hello.blendshape_order)
            self.state = "streaming"
            return self.hello
        assert self.hello is not None
        if isinstance(data, bytes):
            return decode_audio(data, self.hello)
        try:
            body = json_object(data)
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

    def ready(
        self,
        session_id: str,
        *,
        lookahead_samples: int,
        frame_size_px: int | None = None,
        forward: Sequence[tuple[str, str]] = (),
    ) -> str:
        """The ready message for the accepted hello.

        lookahead_samples: 16 kHz samples of audio after a frame's instant that
            must arrive before its record can be built (the session's
            ``due_sample(0) - shown_sample(0)``: mel window plus CAUSE lookahead).
        forward: (kind, destination name) of the avatar apps the session's frames also go to.
        """
        assert self.hello is not None and self.hello.fps is not None, "ready() before a valid hello"
        order = self.hello.blendshape_order
        return Ready(
            session_id=session_id,
            fps=self.hello.fps,
            outputs=self.hello.outputs,
            encoding=self.hello.encoding,
            max_message_bytes=self.max_message_bytes,
            lookahead_samples=lookahead_samples,
            idle_timeout_s=self.idle_timeout_s,
            frame_size_px=frame_size_px if "frames" in self.hello.outputs else None,
            au_names=AU_NAMES if "aus" in self.hello.outputs else (),
            blendshape_names=BLENDSHAPE_ORDERS[order] if "blendshapes" in self.hello.outputs else (),
            blendshape_order=order,
            forward=dict(forward),
        ).to_json()

    def frame(self, index: int, audio_sample: int, server_latency_us: int, aus: np.ndarray) -> bytes | str:
        """The record of AU frame ``index``: aus (17,) in 0..5; sections as the hello asked."""
        shapes = None
        if "blendshapes" in self.outputs:
            shapes = aus_to_blendshapes(aus)[self._blendshape_indices]
        record = FrameRecord(
            seq=self._next_seq(),
            index=index,
            audio_sample=audio_sample,
            server_latency_us=server_latency_us,
            aus=np.asarray(aus, np.float32) if "aus" in self.outputs else None,
            blendshapes=shapes,
        )
        self.frames_sent += 1
        return encode_frame_record(record, self.encoding)

    def jpeg(self, index: int, audio_sample: int, server_latency_us: int, jpeg: bytes) -> bytes | str:
        """The record of a rendered picture of frame ``index``."""
        record = JpegRecord(
            seq=self._next_seq(),
            index=index,
            audio_sample=audio_sample,
            server_latency_us=server_latency_us,
            jpeg=jpeg,
        )
        return encode_jpeg_record(record, self.encoding)

    def forward_stopped(self, kind: str, destination: str, message: str) -> str:
        """Forwarding to one app stopped mid-session (the records and the other apps go on)."""
        return ForwardStopped(kind, destination, message).to_json()

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
