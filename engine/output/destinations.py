"""Where the app outputs may send: a list the server's operator writes, never the client.

VMC and Live Link go out as UDP datagrams, VTube Studio over a WebSocket the
server opens. If a WebSocket or browser client could name the host and port,
it could make the server send traffic anywhere (reflection, or probing a
network the client cannot reach). So destinations come from the server's own
command line or configuration, each with a short name (``default`` unless
named), and a session may only pick one of those names
(:meth:`Destinations.choose`). A kind the operator named nothing for is not
available to sessions at all; ``avatar serve --vmc`` with no address allows
this machine's receiver (loopback, the usual port).
"""

from dataclasses import dataclass, field

from engine.errors import UsageError
from engine.output.errors import ForwardRefused

DEFAULT_PORTS: dict[str, int] = {"vmc": 39539, "vts": 8001, "livelink": 11111}
"""Each receiver's usual port: VMC protocol (VSeeFace, Warudo...), VTube Studio's API, Live Link Face."""
FLAGS: dict[str, str] = {"vmc": "--vmc", "vts": "--vts", "livelink": "--livelink"}
"""The command-line flag that allows each kind (named in refusals, for the operator)."""
DEFAULT_HOST = "127.0.0.1"
DEFAULT_NAME = "default"
MAX_NAME_CHARS = 64
"""What a client may send as a name (``avatar_protocol.forward.MAX_DESTINATION_NAME_CHARS``)."""


@dataclass(frozen=True)
class Destination:
    """A receiver the operator allowed: ``name`` (what a session asks for), ``host`` and ``port``."""

    name: str
    host: str
    port: int

    def describe(self) -> str:
        return f"{self.name} ({self.host}:{self.port})"


def parse_destination(text: str, kind: str) -> Destination:
    """``[NAME=]HOST[:PORT]`` (``[::1]:PORT`` for IPv6) -> a Destination; the port defaults to the kind's.

    VTube Studio's may be written as its URL, ``ws://HOST[:PORT]``.

    Raises:
        UsageError: a malformed entry, with what is accepted.
    """
    if kind not in DEFAULT_PORTS:
        raise UsageError(f"unknown output kind {kind!r}; known: {', '.join(DEFAULT_PORTS)}")
    name, _, address = text.rpartition("=")
    name = name or DEFAULT_NAME
    if kind == "vts":
        address = address.removeprefix("ws://")
    if not name.replace("-", "").replace("_", "").isalnum() or len(name) > MAX_NAME_CHARS:
        raise UsageError(
            f"{FLAGS[kind]} {text}: the name {name!r} may have up to {MAX_NAME_CHARS} letters, digits, - and _"
        )
    host, port_text = address, ""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif address.count(":") == 1:
        host, port_text = address.split(":")
    if not host:
        raise UsageError(f"{FLAGS[kind]} {text}: it has no host; expected [NAME=]HOST[:PORT]")
    try:
        port = int(port_text) if port_text else DEFAULT_PORTS[kind]
    except ValueError:
        raise UsageError(f"{FLAGS[kind]} {text}: the port {port_text!r} is not a number") from None
    if not 1 <= port <= 65535:
        raise UsageError(f"{FLAGS[kind]} {text}: the port {port} is not in 1..65535")
    return Destination(name, host, port)


@dataclass(frozen=True)
class Destinations:
    """The destinations the operator allowed, per output kind (``vmc``, ``vts``, ``livelink``); none by default."""

    allowed: dict[str, tuple[Destination, ...]] = field(default_factory=dict)

    @classmethod
    def from_entries(cls, entries: dict[str, list[str]]) -> "Destinations":
        """``{"vmc": ["127.0.0.1:39540", "stage=192.168.1.20"], ...}`` (command-line values) -> Destinations."""
        allowed: dict[str, tuple[Destination, ...]] = {}
        for kind, texts in entries.items():
            parsed = tuple(parse_destination(text, kind) for text in texts)
            names = [d.name for d in parsed]
            if len(set(names)) != len(names):
                raise UsageError(f"{FLAGS[kind]} destinations need distinct names (NAME=HOST), got {', '.join(names)}")
            if parsed:
                allowed[kind] = parsed
        return cls(allowed)

    def for_kind(self, kind: str) -> tuple[Destination, ...]:
        """The destinations of ``kind`` (empty: the operator allowed none)."""
        if kind not in DEFAULT_PORTS:
            raise ForwardRefused(f"unknown output kind {kind!r}; known: {', '.join(DEFAULT_PORTS)}")
        return self.allowed.get(kind, ())

    def names(self) -> dict[str, list[str]]:
        """Kind -> the names a session may pick, for the kinds the operator allowed (what a page may offer)."""
        return {kind: [d.name for d in options] for kind, options in self.allowed.items()}

    def describe(self) -> str:
        """One line for the operator: every destination, by kind."""
        kinds = [f"{kind} {', '.join(d.describe() for d in options)}" for kind, options in self.allowed.items()]
        return "; ".join(kinds) if kinds else "none"

    def choose(self, kind: str, name: str | None = None) -> Destination:
        """The destination a session asked for by ``name`` (None: the first); never an address it made up.

        Raises:
            ForwardRefused: the operator allowed no ``kind``, or no destination called ``name``; the
                message lists those that are allowed.
        """
        options = self.for_kind(kind)
        if not options:
            raise ForwardRefused(
                f"this server forwards nothing to {kind}: its operator can allow it with "
                f"{FLAGS[kind]} [NAME=]HOST[:PORT]"
            )
        if name is None:
            return options[0]
        for destination in options:
            if destination.name == name:
                return destination
        allowed = ", ".join(d.name for d in options)  # names only: the addresses are the operator's business
        raise ForwardRefused(f"{kind} destination {name!r} is not one this server allows; allowed: {allowed}")
