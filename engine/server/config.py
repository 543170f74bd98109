"""Everything ``avatar serve`` can be told, with documented defaults and units in names."""

from dataclasses import dataclass
from pathlib import Path

from engine.au.liveness import LivenessSettings


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    """Server settings; the CLI flags of ``avatar serve`` map one to one onto these fields.

    host, port: where to listen (default loopback only: exposing a camera-like
        service on every interface is an explicit choice, ``--host 0.0.0.0``).
    fps: video frame rate of every session, frames per second.
    output_size_px: side of the square video sent to peers, pixels (the portrait
        is scaled to it; even, for 4:2:0 chroma).
    max_sessions: concurrent sessions of all kinds (WebRTC and WebSocket); one
        more is refused with HTTP 503 and a JSON error.
    session_idle_timeout_s: a session that receives no audio for this long is closed.
    ice_timeout_s: a WebRTC session whose connection is not established within
        this long after the answer is closed.
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
    max_sessions: int = 4
    session_idle_timeout_s: float = 30.0
    ice_timeout_s: float = 15.0
    max_message_bytes: int = 1 << 20
    max_batch: int | None = None
    batch_window_ms: float = 3.0
    liveness: LivenessSettings = LivenessSettings()
    publish_whip_url: str | None = None
    publish_whip_token: str | None = None
    renderer: str = "auto"
    framing: str = "portrait"
