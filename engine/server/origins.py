"""Which Host names and browser Origins the server answers: DNS rebinding and cross-site requests refused.

No I/O: header values in, None (accepted) or a one-line reason out.

- **Host** (every request): a page on ``attacker.example`` whose name the
  attacker re-points at this server's address (DNS rebinding) reaches it with
  ``Host: attacker.example``. Accepted are IP literals (a browser that sends
  one is on that address's own origin), ``localhost`` (and ``*.localhost``),
  this machine's host name when the server listens on every interface, and
  the names configured (``--server-name``); ``*`` accepts any.
- **Origin** (the WebSocket upgrade and the POSTs/DELETE that open or end a
  session): browsers send it; a cross-site page's requests carry its own.
  Accepted: no Origin at all (not a browser: game engines, scripts, OBS), the
  server's own origin (same host and port as the Host header), or one of the
  configured origins (``--allow-origin``; ``*`` accepts any).
"""

import ipaddress
import re
import socket
from urllib.parse import urlsplit

ANY = "*"
_HOST_CHARACTERS = re.compile(r"[A-Za-z0-9.\-_:\[\]]+")
"""What a Host header may contain (a name, IPv4, [IPv6], a port)."""
WILDCARD_HOSTS = ("", "0.0.0.0", "::")


def split_host(value: str) -> tuple[str, int | None] | None:
    """``host[:port]`` or ``[v6][:port]`` -> (lower-case host without brackets, port or None); None if malformed."""
    if not _HOST_CHARACTERS.fullmatch(value):
        return None
    try:
        parts = urlsplit(f"//{value}")
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host or parts.username is not None or parts.path or parts.query or parts.fragment:
        return None
    return host.lower(), port


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class OriginPolicy:
    """The names and origins one server accepts (see the module docstring)."""

    def __init__(self, *, bind_host: str, server_names: tuple[str, ...] = (), allowed_origins: tuple[str, ...] = ()):
        names = {name.lower().rstrip(".") for name in server_names}
        if bind_host in WILDCARD_HOSTS:
            hostname = socket.gethostname().lower()
            names |= {hostname, f"{hostname}.local", socket.getfqdn().lower()}
        elif not _is_ip(bind_host):
            names.add(bind_host.lower())
        self.server_names = frozenset(names)
        self.allowed_origins = frozenset(_normalized_origin(origin) for origin in allowed_origins)

    def host_error(self, host_header: str | None) -> str | None:
        """Why a request with this Host header is refused, or None."""
        if ANY in self.server_names:
            return None
        parsed = split_host(host_header or "")
        if parsed is None:
            return f"the Host header {host_header!r} is missing or malformed"
        host = parsed[0].rstrip(".")
        if _is_ip(host) or host == "localhost" or host.endswith(".localhost") or host in self.server_names:
            return None
        return (
            f"this server does not answer to the name {host!r} (a DNS rebinding guard); "
            f"start it with --server-name {host} to serve that name"
        )

    def origin_error(self, origin: str | None, host_header: str | None) -> str | None:
        """Why a request with this Origin (None: no header) is refused, or None."""
        if origin is None or ANY in self.allowed_origins:
            return None
        normalized = _normalized_origin(origin)
        if normalized in self.allowed_origins:
            return None
        own = split_host(host_header or "")
        if own is not None and _authority(origin) == own:
            return None
        return (
            f"requests from the page at {origin} are not allowed (only this server's own pages); "
            f"start the server with --allow-origin {origin} to allow it"
        )


def _authority(origin: str) -> tuple[str, int | None] | None:
    """(host, port) of an Origin header value, None for "null" or anything malformed."""
    try:
        parts = urlsplit(origin)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    return None if host is None else (host.lower(), port)


def _normalized_origin(origin: str) -> str:
    """``scheme://host[:port]`` in lower case, without a trailing slash; ``*`` as is."""
    return origin if origin == ANY else origin.strip().rstrip("/").lower()
