"""Who may open sessions and read metrics: bearer tokens, static or HS256 JSON Web Tokens.

No I/O here: a token and a scope in, a :class:`Grant` or an :class:`AuthError`
(with its HTTP status and a message the client can act on) out.

Where a client puts its token (:func:`request_token`):

- ``Authorization: Bearer <token>``: game engines, WHIP clients (OBS), scripts;
- ``?token=<token>`` in the URL: a browser's WebSocket, which cannot set headers;
- the WebSocket subprotocol ``bearer.<token>``, offered beside
  :data:`WS_SUBPROTOCOL` (the server answers with the latter, never echoing the token).

Tokens, checked in this order:

- the static access token (``--token-file`` or ``$AVATAR_TOKEN``): sessions;
- the metrics token (``--metrics-token-file`` or ``$AVATAR_METRICS_TOKEN``): ``/metrics``;
- a JWT signed with HS256 by the shared secret (``--jwt-secret-file`` or
  ``$AVATAR_JWT_SECRET``), which must carry ``exp``; optional claims:
  ``scope`` (space-separated, default ``"session"``; ``"metrics"`` reads
  /metrics), ``avatar`` (the avatar this server must serve), ``max_sessions``
  (sessions this token may hold at once; holders are told apart by ``sub``).
"""

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import jwt

SESSION_SCOPE = "session"
"""Opens sessions: POST /offer, POST /whip, DELETE /whip/<id>, GET /ws, GET /config."""
METRICS_SCOPE = "metrics"
"""Reads GET /metrics."""
TOKEN_QUERY_KEY = "token"
WS_SUBPROTOCOL = "avatar.v1"
"""The subprotocol the server selects when a client offers subprotocols (browsers then require one back)."""
WS_TOKEN_PREFIX = "bearer."
JWT_ALGORITHM = "HS256"
JWT_LEEWAY_S = 5.0
"""Clock difference tolerated on ``exp``, seconds."""
MIN_TOKEN_BYTES = 16
"""Shortest static token accepted: anything shorter can be guessed."""
MIN_JWT_SECRET_BYTES = 32
"""Shortest HS256 secret accepted (RFC 7518 3.2: a key as long as the hash)."""
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


class AuthError(Exception):
    """Refused: ``status`` 401 (no or bad credentials) or 403 (valid, but not for this)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Grant:
    """What a request may do: ``holder`` names the credential, ``max_sessions`` caps its sessions (None: no cap)."""

    holder: str
    max_sessions: int | None = None


ANONYMOUS = Grant("anonymous")
"""The grant of every request when no authentication is required."""


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` reaches this machine only (127.0.0.0/8, ::1, localhost)."""
    return host in LOOPBACK_NAMES or host.startswith("127.")


def auth_required(mode: str, host: str, *, has_credentials: bool) -> bool:
    """``on``; ``off``; ``auto``: on off loopback, and on loopback too once a token or secret is given."""
    if mode not in ("auto", "on", "off"):
        raise ValueError(f"auth must be auto, on or off, got {mode!r}")
    if mode == "auto":
        return has_credentials or not is_loopback(host)
    return mode == "on"


class Authenticator:
    """Checks tokens against the configured credentials (see the module docstring)."""

    def __init__(
        self,
        *,
        required: bool,
        access_token: str | None = None,
        metrics_token: str | None = None,
        jwt_secret: str | None = None,
        avatar_name: str = "default",
        clock: Callable[[], float] = time.time,
    ) -> None:
        secrets = (
            ("access token", access_token, MIN_TOKEN_BYTES),
            ("metrics token", metrics_token, MIN_TOKEN_BYTES),
            ("JWT secret", jwt_secret, MIN_JWT_SECRET_BYTES),
        )
        for name, value, shortest in secrets:
            if value is not None and len(value.encode()) < shortest:
                raise ValueError(f"the {name} is too short: use at least {shortest} random bytes")
        if required and access_token is None and jwt_secret is None:
            raise ValueError("authentication is required but no access token or JWT secret is configured")
        self.required = required
        self._access_token = access_token
        self._metrics_token = metrics_token
        self._jwt_secret = jwt_secret
        self._avatar_name = avatar_name
        self._clock = clock

    def authorize(self, token: str | None, scope: str) -> Grant:
        """The grant of ``token`` for ``scope``; :class:`AuthError` if it has none."""
        if not self.required:
            return ANONYMOUS
        if not token:
            raise AuthError(401, f"a bearer token is required ({_where_tokens_go()})")
        if scope == SESSION_SCOPE and _same(token, self._access_token):
            return Grant("access-token")
        if scope == METRICS_SCOPE and _same(token, self._metrics_token):
            return Grant("metrics-token")
        if self._jwt_secret is not None and token.count(".") == 2:
            return self._jwt_grant(token, scope)
        if _same(token, self._access_token) or _same(token, self._metrics_token):
            raise AuthError(403, f"this token does not give access to {scope}")
        raise AuthError(401, "the bearer token is not valid")

    def _jwt_grant(self, token: str, scope: str) -> Grant:
        assert self._jwt_secret is not None
        try:
            claims = jwt.decode(
                token,
                self._jwt_secret,
                algorithms=[JWT_ALGORITHM],
                options={"require": ["exp"]},
                leeway=JWT_LEEWAY_S,
            )
        except jwt.ExpiredSignatureError:
            raise AuthError(401, "the token has expired") from None
        except jwt.MissingRequiredClaimError:
            raise AuthError(401, 'the token has no expiry ("exp" claim): tokens must expire') from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(401, f"the token is not valid: {exc}") from None
        scopes = claims.get("scope", SESSION_SCOPE)
        if isinstance(scopes, str):
            scopes = scopes.split()
        if not isinstance(scopes, list) or scope not in scopes:
            raise AuthError(403, f"this token's scope does not include {scope}")
        avatar = claims.get("avatar")
        if avatar is not None and avatar != self._avatar_name:
            raise AuthError(403, f"this token is for avatar {avatar!r}; this server serves {self._avatar_name!r}")
        max_sessions = claims.get("max_sessions")
        if max_sessions is not None and (not isinstance(max_sessions, int) or max_sessions < 1):
            raise AuthError(401, "the token's max_sessions claim must be a positive integer")
        holder = claims.get("sub")
        if not isinstance(holder, str) or not holder:
            holder = "jwt-" + hashlib.sha256(token.encode()).hexdigest()[:16]
        return Grant(f"jwt:{holder}", max_sessions)


def request_token(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The bearer token a request carries, wherever the client put it (module docstring); None if none."""
    authorization = headers.get("Authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if query.get(TOKEN_QUERY_KEY):
        return query[TOKEN_QUERY_KEY]
    for protocol in headers.get("Sec-WebSocket-Protocol", "").split(","):
        protocol = protocol.strip()
        if protocol.startswith(WS_TOKEN_PREFIX) and len(protocol) > len(WS_TOKEN_PREFIX):
            return protocol[len(WS_TOKEN_PREFIX) :]
    return None


def _same(given: str, expected: str | None) -> bool:
    """Constant-time comparison (no timing hints about the token), False when nothing is expected."""
    return expected is not None and hmac.compare_digest(given.encode(), expected.encode())


def _where_tokens_go() -> str:
    return (
        f"send 'Authorization: Bearer <token>', or ?{TOKEN_QUERY_KEY}=<token> in the URL, "
        f"or the WebSocket subprotocol {WS_TOKEN_PREFIX}<token>"
    )
