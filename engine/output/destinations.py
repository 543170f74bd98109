"""Where the app outputs may send: a list the server's operator writes, never the client.

VMC and Live Link go out as UDP datagrams, VTube Studio over a WebSocket the
server opens. If a WebSocket or browser client could name the host and port,
it could make the server send traffic anywhere (reflection, or probing a
network the client cannot reach). So destinations come from the server's own
command line or configuration, loopback by default, each with a short name;
a session may only pick one of those names (:meth:`Destinations.choose`).
"""

from dataclasses import dataclass, field

from engine.errors import UsageError

DEFAULT_PORTS: dict[str, int] = {"vmc": 39539, "livelink": 11111, "vts": 8001}
"""Each receiver's usual port: VMC protocol (VSeeFace, Warudo...), Live Link Face, VTube Studio's API."""
DEFAULT_HOST = "127.0.0.1"
DEFAULT_NAME = "default"


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

    Raises:
        ValueError: a malformed entry, with what is accepted.
    """
    if kind not in DEFAULT_PORTS:
        raise UsageError(f"unknown output kind {kind!r}; known: {', '.join(DEFAULT_PORTS)}")
    name, _, address = text.rpartition("=")
    name = name or DEFAULT_NAME
    if not name.replace("-", "").replace("_", "").isalnum():
        raise UsageError(f"{kind} destination name {name!r}: use letters, digits, - and _")
    host, port_text = address, ""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif address.count(":") == 1:
        host, port_text = address.split(":")
    if not host:
        raise UsageError(f"{kind} destination {text!r} has no host; expected [NAME=]HOST[:PORT]")
    try:
        port = int(port_text) if port_text else DEFAULT_PORTS[kind]
    except ValueError:
        raise UsageError(f"{kind} destination {text!r}: port {port_text!r} is not a number") from None
    if not 1 <= port <= 65535:
        raise UsageError(f"{kind} destination {text!r}: port {port} is not in 1..65535")
    return Destination(name, host, port)


@dataclass
class Destinations:
    """The destinations the operator allowed, per output kind (``vmc``, ``livelink``, ``vts``).

    A kind the operator named nothing for gets one loopback destination,
    ``default``, at the receiver's usual port.
    """

    allowed: dict[str, tuple[Destination, ...]] = field(default_factory=dict)

    @classmethod
    def from_entries(cls, entries: dict[str, list[str]]) -> "Destinations":
        """``{"vmc": ["127.0.0.1:39540", "stage=192.168.1.20"], ...}`` (command-line values) -> Destinations."""
        allowed: dict[str, tuple[Destination, ...]] = {}
        for kind, texts in entries.items():
            parsed = tuple(parse_destination(text, kind) for text in texts)
            names = [d.name for d in parsed]
            if len(set(names)) != len(names):
                raise UsageError(f"{kind} destinations need distinct names, got {', '.join(names)}")
            if parsed:
                allowed[kind] = parsed
        return cls(allowed)

    def for_kind(self, kind: str) -> tuple[Destination, ...]:
        if kind not in DEFAULT_PORTS:
            raise UsageError(f"unknown output kind {kind!r}; known: {', '.join(DEFAULT_PORTS)}")
        return self.allowed.get(kind) or (Destination(DEFAULT_NAME, DEFAULT_HOST, DEFAULT_PORTS[kind]),)

    def choose(self, kind: str, name: str | None = None) -> Destination:
        """The destination a session asked for by ``name`` (None: the first); never an address it made up.

        Raises:
            ValueError: ``name`` is not one the operator allowed; the message lists those that are.
        """
        options = self.for_kind(kind)
        if name is None:
            return options[0]
        for destination in options:
            if destination.name == name:
                return destination
        allowed = ", ".join(d.describe() for d in options)
        raise UsageError(f"{kind} destination {name!r} is not one this server allows; allowed: {allowed}")
