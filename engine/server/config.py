"""Everything ``avatar serve`` can be told, with documented defaults and units in names."""

from dataclasses import dataclass, field
from pathlib import Path

from engine.au.liveness import LivenessSettings
from engine.backends.selection import OPENVINO, default_max_sessions
from engine.output.forward import ForwardSettings

AUTH_MODES = ("auto", "on", "off")
"""``auto``: tokens required whenever the server listens on a non-loopback address."""
PLAYOUT_DELAYS = ("zero", "browser")
"""``zero``: WebRTC receivers are asked to show frames on arrival (``engine.output.playout_delay``)."""


@dataclass(frozen=True, kw_only=True)
class IceServer:
    """A STUN or TURN server for WebRTC (``RTCIceServer``): handed to the page and used by the server's peers.

    urls: ``stun:host:port`` / ``turn:host:port?transport=udp`` / ``turns:...``.
    username, credential: TURN's long-term credentials (None for STUN).
    """

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, object]:
        """As the browser's ``RTCPeerConnection({iceServers: [...]})`` takes it."""
        body: dict[str, object] = {"urls": list(self.urls)}
        if self.username is not None:
            body["username"] = self.username
        if self.credential is not None:
            body["credential"] = self.credential
        return body


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    """Server settings; the CLI flags of ``avatar serve`` map one to one onto these fields.

    host, port: where to listen (default loopback only: exposing a camera-like
        service on every interface is an explicit choice, ``--host 0.0.0.0``).
    fps: video frame rate of every session, frames per second.
    output_size_px: side of the square video sent to peers, pixels (the portrait
        is scaled to it; even, for 4:2:0 chroma).
    max_sessions: concurrent sessions of all kinds (WebRTC and WebSocket); one
        more is refused with HTTP 503 and a JSON error. Default: what the CPU
        holds (``engine.backends.selection.default_max_sessions``; ``avatar
        serve`` applies its backend's).
    session_idle_timeout_s: a session that receives less than half real time of
        audio for this long is closed (empty or tiny keep-alive messages do not count).
    ice_timeout_s: a WebRTC session whose connection (ICE and DTLS) is not
        established within this long after the answer is closed, its slot freed.
    max_message_bytes: largest WebSocket message accepted; larger ones are
        refused with a close code 1009 and a reason.
    precision, threads, streams: the generator runtime's settings (see
        ``engine.backends.BackendOptions``); None: the backend's default
        (``engine.backends.selection.default_options``).
    max_batch: most frames the scheduler renders in one generator call; None:
        the backend's default (``engine.backends.selection.default_max_batch``).
    batch_window_ms: how long the scheduler waits after the first due frame for
        others to join its batch.
    liveness: every session's liveness at its start (blinks, smoothing, head
        and idle motion); a session's control channel can change its own.
    publish_whip_url, publish_whip_token: also publish every session's avatar
        to this WHIP endpoint (``engine.output.whip_sessions``); None: not.
    renderer: ``auto``, ``ganimation`` or ``warp`` (``engine.pipeline.renderer_choice``).
    framing: ``portrait``, ``head`` or ``head-wide`` (``engine.avatar.framing``).
    playout_delay: ``zero`` (ask WebRTC receivers to show each frame as soon as
        it is decoded, ``engine.output.playout_delay``) or ``browser`` (leave
        the delay to the receiver's jitter buffer).
    forwarding: the avatar apps (VMC, VTube Studio, Live Link) sessions may
        forward to, and how (``engine.output.forward``); none by default.

    Access (``engine.server.auth``, ``engine.server.origins``):

    auth: ``auto`` (tokens required on a non-loopback address), ``on`` or ``off``.
    access_token: the static bearer token that opens sessions (/offer, /whip, /ws, /config).
    jwt_secret: HS256 key of JSON Web Tokens that open sessions (claims: exp, and
        optionally scope, avatar, max_sessions).
    metrics_token: the bearer token of ``GET /metrics`` (when auth is required).
    allowed_origins: browser origins allowed on /ws and the POSTs besides the
        server's own; ``"*"`` allows any.
    server_names: host names the server answers to besides IP addresses and
        localhost (DNS rebinding check on the Host header); ``"*"`` allows any.

    TLS (``engine.server.tls``): tls_cert_path and tls_key_path (PEM), or
    self_signed: a certificate made once for this machine's names and addresses.
    ice_servers: STUN/TURN servers handed to the page (``GET /config``) and used by the server.

    Limits (``engine.server.limits``), per connection, per client address and in all:

    write_timeout_s: a message the client has not taken within this long evicts it.
    header_timeout_s: the request line and headers must arrive within this long
        of the connection (and an idle kept-alive connection is closed after it).
    body_timeout_s: a request body must arrive within this long (408 otherwise).
    max_body_bytes: largest request body (413 beyond).
    max_messages_per_s: WebSocket messages a connection may send per second
        once its session has started (bursts of a second's worth); beyond, the
        server reads its messages no faster (the sender is slowed). Pings are
        limited apart, and before the hello only a few messages are allowed:
        beyond those the connection is closed (``engine.server.ws_connection``).
    max_messages_per_s_per_address: the same, summed over one client address.
    max_connects_per_s_per_address: new WebSocket connections and offers one
        client address may open per second (bursts of that many); beyond, 429.
    max_requests_per_s_per_address: HTTP requests of any kind one client address
        may make per second (bursts of that many); beyond, 429 and the connection closed.
    max_pending: connections not yet in a session (WebSocket before its hello,
        WebRTC before ICE connects), in all; more are refused with 429.
    max_pending_per_address: the same, per client address.
    max_audio_speed: audio is taken at most this many times faster than real
        time per WebSocket session (a faster sender is slowed, not served first).
    max_connections: open TCP connections at once; beyond, new ones are closed
        at once. None: derived from the process's descriptor limit.
    drain_timeout_s: on SIGTERM/SIGINT, every session is closed within this long.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    fps: int = 25
    output_size_px: int = 512
    backend: str = "openvino"
    precision: str | None = None
    threads: int | None = None
    streams: int | None = None
    avatar_path: Path | None = None
    face_box: str | None = None
    generator_path: Path | None = None
    cause_path: Path | None = None
    max_sessions: int = field(default_factory=lambda: default_max_sessions(OPENVINO))
    session_idle_timeout_s: float = 12.0
    ice_timeout_s: float = 8.0
    max_message_bytes: int = 1 << 20
    max_batch: int | None = None
    batch_window_ms: float = 3.0
    liveness: LivenessSettings = LivenessSettings()
    publish_whip_url: str | None = None
    publish_whip_token: str | None = None
    renderer: str = "auto"
    framing: str = "portrait"
    playout_delay: str = "zero"
    forwarding: ForwardSettings = field(default_factory=ForwardSettings)

    auth: str = "auto"
    access_token: str | None = field(default=None, repr=False)
    jwt_secret: str | None = field(default=None, repr=False)
    metrics_token: str | None = field(default=None, repr=False)
    allowed_origins: tuple[str, ...] = ()
    server_names: tuple[str, ...] = ()

    tls_cert_path: Path | None = None
    tls_key_path: Path | None = None
    self_signed: bool = False
    ice_servers: tuple[IceServer, ...] = ()

    write_timeout_s: float = 5.0
    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
    max_body_bytes: int = 256 * 1024
    max_messages_per_s: float = 200.0
    max_messages_per_s_per_address: float = 400.0
    max_connects_per_s_per_address: float = 20.0
    max_requests_per_s_per_address: float = 50.0
    max_pending: int = 32
    max_pending_per_address: int = 4
    max_audio_speed: float = 4.0
    max_connections: int | None = None
    drain_timeout_s: float = 2.0

    @property
    def tls(self) -> bool:
        """Whether the server speaks https (and wss)."""
        return self.self_signed or self.tls_cert_path is not None
