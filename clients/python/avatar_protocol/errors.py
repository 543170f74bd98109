"""Errors of the WebSocket API: a stable code, a message for a person, and the close code that ends the connection."""

import json
from enum import IntEnum

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


def forward_refused(message: str) -> ProtocolError:
    """The hello asked to forward to an app this server does not allow (no such kind or destination name)."""
    return ProtocolError("forward_refused", message, CloseCode.POLICY_VIOLATION)


def forward_unavailable(message: str) -> ProtocolError:
    """Forwarding is allowed but cannot start now (in use by another session, the app unreachable or refusing,
    a package missing on the server): close 1013, try again later or without it."""
    return ProtocolError("forward_unavailable", message, CloseCode.TRY_AGAIN_LATER)


def internal_error(message: str = "internal server error; the session was ended") -> ProtocolError:
    return ProtocolError("internal_error", message, CloseCode.INTERNAL_ERROR)
