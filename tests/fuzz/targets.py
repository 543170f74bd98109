"""What the fuzzers feed: bytes in, the server's parsers run, only their own refusals may come out.

Each target takes arbitrary bytes, turns them into what a client can send
(WebSocket messages, a hello, an SDP offer or the page's JSON offer, control
channel messages, request headers) and runs the code that reads them, with
no I/O. A target passes when the input is accepted or refused with the
module's own error (``ProtocolError``, ``OfferError``, ``ControlError``,
``AuthError``); any other exception is a bug (the server would answer 500,
or worse). Shared by the coverage-guided fuzzer (``tests/fuzz/run.py``,
atheris) and the property tests (``test_properties.py``, hypothesis).

The WebSocket session format (:func:`session_messages`): records of one type
byte (even: text, odd: binary), a little-endian u16 length, the payload.
"""

import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from avatar_protocol import ProtocolError, parse_hello
from engine.au import ExpressionControl
from engine.server.auth import SESSION_SCOPE, Authenticator, AuthError, request_token
from engine.server.control import ControlError, apply_expression, parse_control_message
from engine.server.offer import OfferError, check_offer, parse_json_offer
from engine.server.origins import OriginPolicy
from engine.server.protocol import ServerConnection

CORPUS = Path(__file__).resolve().parent / "corpus"
"""Seeds and kept findings, one folder per target."""
MAX_MESSAGE_BYTES = 64 * 1024
_RECORD = struct.Struct("<BH")
_AUTH = Authenticator(
    required=True, access_token="fuzz-access-token-0123456789", jwt_secret="fuzz-jwt-secret-0123456789abcdefghijklm"
)
_ORIGINS = OriginPolicy(bind_host="0.0.0.0", server_names=("avatar.lan",), allowed_origins=("https://app.example",))


def session_messages(data: bytes) -> Iterator[bytes | str]:
    """The messages a byte string encodes (module docstring); text is decoded as the WebSocket layer would."""
    offset = 0
    while offset + _RECORD.size <= len(data):
        kind, length = _RECORD.unpack_from(data, offset)
        offset += _RECORD.size
        payload = data[offset : offset + length]
        offset += length
        yield payload if kind % 2 else payload.decode("utf-8", errors="replace")


def encode_session(messages: list[bytes | str]) -> bytes:
    """The inverse of :func:`session_messages` (to write seeds)."""
    out = b""
    for message in messages:
        payload = message.encode() if isinstance(message, str) else message
        out += _RECORD.pack(0 if isinstance(message, str) else 1, len(payload)) + payload
    return out


def websocket_session(data: bytes) -> None:
    """A whole WebSocket session through the protocol's state machine, as the server feeds it."""
    connection = ServerConnection(max_message_bytes=MAX_MESSAGE_BYTES, default_fps=25, idle_timeout_s=12.0)
    for message in session_messages(data):
        try:
            connection.receive(message)
        except ProtocolError:
            return  # the server sends the error and closes: the session is over
    if connection.hello is not None:
        connection.ready("ws-1", frame_size_px=256, lookahead_samples=720)


def hello(data: bytes) -> None:
    try:
        parse_hello(data.decode("utf-8", errors="replace"), default_fps=25)
    except ProtocolError:
        pass


def offer(data: bytes) -> None:
    """An SDP offer (WHIP) and the same bytes as the page's JSON offer."""
    text = data.decode("utf-8", errors="replace")
    try:
        check_offer(text)
    except OfferError:
        pass
    try:
        check_offer(parse_json_offer(text).sdp)
    except OfferError:
        pass


def control(data: bytes) -> None:
    try:
        update = parse_control_message(data)
        apply_expression(ExpressionControl(), update)
    except ControlError:
        pass


def request_headers(data: bytes) -> None:
    """Authorization, token query, subprotocol, Host and Origin values a client may send."""
    values = data.decode("utf-8", errors="replace").split("\n")
    authorization, query, protocols, host, origin = (values + [""] * 5)[:5]
    token = request_token({"Authorization": authorization, "Sec-WebSocket-Protocol": protocols}, {"token": query})
    try:
        _AUTH.authorize(token, SESSION_SCOPE)
    except AuthError:
        pass
    _ORIGINS.host_error(host)
    _ORIGINS.origin_error(origin or None, host)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "websocket": websocket_session,
    "hello": hello,
    "offer": offer,
    "control": control,
    "headers": request_headers,
}
"""Target name -> function; the name is also its corpus folder (``tests/fuzz/corpus/<name>/``)."""

SLOW_INPUT_S = 1.0
"""An input that takes longer than this is a finding too (a client could make the server spin)."""


def run_timed(target: Callable[[bytes], None], data: bytes) -> float:
    """Run ``target`` on ``data``; its duration, seconds."""
    start = time.perf_counter()
    target(data)
    return time.perf_counter() - start
