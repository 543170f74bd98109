"""Forwarding a session's face to avatar apps: the hello's ``forward`` key and the ``forward_stopped`` message.

A session may ask the server to send every frame on to avatar apps besides the
records: VMC receivers (VSeeFace, Warudo, VNyan...), VTube Studio, Unreal's
Live Link. The client never names an address: the server's operator lists the
destinations it allows (``avatar serve --vmc [NAME=]HOST[:PORT]``), each with a
name, and the client picks by kind and name::

    "forward": {"vmc": "stage", "vts": true}

``true`` picks the operator's first destination of that kind (named
``default`` unless the operator named it). Values are checked here for shape
only; whether the server allows them is the server's answer (error
``forward_refused``).
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass

FORWARD_KINDS = ("vmc", "vts", "livelink")
"""What a session can forward to: VMC protocol over OSC/UDP, VTube Studio's plugin API, Live Link Face UDP."""
MAX_DESTINATION_NAME_CHARS = 64

ForwardRequest = dict[str, str | None]
"""Kind -> destination name, or None for the operator's first destination of that kind."""


def parse_forward(value: object) -> ForwardRequest:
    """The ``forward`` object of a hello (or of a WebRTC control message) -> kind -> name or None.

    Raises:
        ValueError: not an object of known kinds to a name or ``true``; the message says what is accepted.
    """
    example = 'e.g. {"vmc": true} or {"vmc": "stage"}'
    if not isinstance(value, Mapping):
        raise ValueError(f"forward must be an object of kind -> destination name or true, {example}")
    request: ForwardRequest = {}
    for kind, name in value.items():
        if kind not in FORWARD_KINDS:
            raise ValueError(f"forward: unknown kind {kind!r}; kinds: {', '.join(FORWARD_KINDS)}")
        if name is True:
            request[kind] = None
        elif isinstance(name, str) and 0 < len(name) <= MAX_DESTINATION_NAME_CHARS:
            request[kind] = name
        else:
            raise ValueError(
                f"forward: {kind} must be a destination name (1 to {MAX_DESTINATION_NAME_CHARS} characters) or "
                f"true, got {name!r}; {example}"
            )
    return request


def forward_json(request: Mapping[str, str | None]) -> dict[str, str | bool]:
    """A request as JSON writes it (None -> true)."""
    return {kind: True if name is None else name for kind, name in request.items()}


@dataclass(frozen=True)
class ForwardStopped:
    """The server stopped forwarding to one app mid-session (it refused or vanished); the rest goes on.

    kind: ``"vmc"``, ``"vts"`` or ``"livelink"``. destination: the operator's name for it.
    message: why, for a person.
    """

    kind: str
    destination: str
    message: str

    def to_json(self) -> str:
        return json.dumps(
            {"type": "forward_stopped", "kind": self.kind, "destination": self.destination, "message": self.message}
        )
