"""Forwarding a live session's AU frames to avatar apps: the destinations it picked, as one AU output.

A session (a WebSocket hello's ``forward``, a WebRTC page's ``forward``
control message, ``avatar live --vmc ...``) asks for destinations by kind and
name; the operator's :class:`~engine.output.destinations.Destinations` say
which exist. :class:`SessionForwards` is the one
:class:`engine.live.outputs.AUOutput` a session attaches for all of them:

- **one session per destination**: two sessions driving one VSeeFace would
  make its avatar flicker between two faces, so a destination another session
  holds is refused (:class:`~engine.output.errors.OutputUnavailable`) until
  that session lets it go;
- **all or nothing**: :meth:`SessionForwards.choose` opens every destination
  asked for (VTube Studio: connect and authenticate) before any frame goes
  to them, and changes nothing if one fails;
- **a failing app never hurts the rest**: an output that raises, or takes
  longer than :data:`SEND_TIMEOUT_S` to take a frame (VTube Studio not
  reading), is closed and dropped, ``on_stopped`` tells the transport (which
  tells its client), and the session and its other outputs go on.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import require
from engine.live.outputs import AUOutput
from engine.output.destinations import Destination, Destinations
from engine.output.errors import OutputUnavailable
from engine.output.livelink import DEFAULT_SUBJECT, LiveLinkOutput
from engine.output.vmc import DEFAULT_SHAPE_SET, SHAPE_SETS, VmcOutput
from engine.output.vtube_studio import DEFAULT_TOKEN_PATH, VTubeStudioError, VTubeStudioOutput
from engine.pipeline.frames import AUFrame

log = logging.getLogger(__name__)

SEND_TIMEOUT_S = 1.0
"""An app output that takes longer than this to take one frame is dropped (the session's records wait for it)."""

OnStopped = Callable[[str, str, str], Awaitable[None]]
"""Called with the kind, the destination's name and the reason when an output is dropped mid-session."""


@dataclass(frozen=True, kw_only=True)
class ForwardSettings:
    """What the operator allows sessions to forward to, and how (``--vmc``, ``--vts``, ``--livelink`` flags).

    destinations: the allowed receivers, by kind (none by default).
    vmc_shapes: the VMC shape set, ``vrm1``, ``vrm0`` or ``arkit`` (``engine.output.vmc``).
    livelink_subject: the Live Link subject name Unreal shows.
    vts_token_path: where VTube Studio's plugin token is kept between connections.
    """

    destinations: Destinations = field(default_factory=Destinations)
    vmc_shapes: str = DEFAULT_SHAPE_SET
    livelink_subject: str = DEFAULT_SUBJECT
    vts_token_path: Path = DEFAULT_TOKEN_PATH

    def __post_init__(self) -> None:
        if self.vmc_shapes not in SHAPE_SETS:
            raise ValueError(f"unknown VMC shape set {self.vmc_shapes!r}; choose one of: {', '.join(SHAPE_SETS)}")
        if not self.livelink_subject:
            raise ValueError("the Live Link subject name must not be empty")

    def check_packages(self) -> None:
        """Fail now, naming the extra, if an allowed kind needs a package that is missing (VMC: python-osc).

        Raises:
            MissingExtraError: python-osc is missing and VMC destinations are allowed.
        """
        if self.destinations.for_kind("vmc"):
            require("pythonosc", extra="apps", purpose="--vmc (VMC protocol over OSC)")

    def every_destination(self) -> list[tuple[str, str | None]]:
        """(kind, name) of every allowed destination: what a program with one speaker forwards to."""
        return [(kind, d.name) for kind, options in self.destinations.allowed.items() for d in options]


class Forwarder:
    """The forwarding of one process: its settings, and which session holds each destination."""

    def __init__(self, settings: ForwardSettings) -> None:
        self.settings = settings
        self._holders: dict[tuple[str, str], Hashable] = {}

    def session(self, session_id: Hashable, *, fps: int, on_stopped: OnStopped | None = None) -> "SessionForwards":
        """The forwarding of one session (nothing yet: :meth:`SessionForwards.choose` picks destinations)."""
        return SessionForwards(self, session_id, fps=fps, on_stopped=on_stopped)

    def take(self, kind: str, destination: Destination, session_id: Hashable) -> None:
        """Reserve ``destination`` for ``session_id``; OutputUnavailable if another session holds it."""
        holder = self._holders.setdefault((kind, destination.name), session_id)
        if holder != session_id:
            raise OutputUnavailable(
                f"{kind} destination {destination.name!r} is in use by another session; try again when it ends"
            )

    def release(self, kind: str, destination: Destination, session_id: Hashable) -> None:
        if self._holders.get((kind, destination.name)) == session_id:
            del self._holders[(kind, destination.name)]


@dataclass(eq=False)
class _Member:
    kind: str
    destination: Destination
    output: AUOutput


class SessionForwards:
    """One session's app outputs as a single AU output (see the module docstring). Use from the event loop."""

    name = "forward"

    def __init__(
        self, forwarder: Forwarder, session_id: Hashable, *, fps: int, on_stopped: OnStopped | None = None
    ) -> None:
        self._forwarder = forwarder
        self._session_id = session_id
        self._fps = fps
        self.on_stopped = on_stopped
        """Told when an output is dropped mid-session (the transport tells its client); settable later."""
        self._members: list[_Member] = []
        self._lock = asyncio.Lock()
        self._closed = False

    @property
    def active(self) -> list[tuple[str, str]]:
        """(kind, destination name) of every output frames go to now."""
        return [(m.kind, m.destination.name) for m in self._members]

    async def choose(self, wanted: Sequence[tuple[str, str | None]]) -> list[tuple[str, str]]:
        """Forward to exactly ``wanted`` from now on: (kind, name or None for the operator's first) pairs.

        Outputs already open to a destination still wanted are kept (VTube
        Studio is not asked again); the others are closed. Returns :attr:`active`.

        Raises:
            ForwardRefused: a kind or name the operator did not allow; nothing changed.
            OutputUnavailable: a destination is held by another session, an app
                cannot be reached or refuses, a package is missing; nothing changed.
        """
        async with self._lock:
            destinations = self._forwarder.settings.destinations
            targets: list[tuple[str, Destination]] = []
            for kind, name in wanted:
                target = (kind, destinations.choose(kind, name))
                if target not in targets:
                    targets.append(target)
            keep = [m for m in self._members if (m.kind, m.destination) in targets]
            kept = {(m.kind, m.destination) for m in keep}
            opened: list[_Member] = []
            try:
                for kind, destination in targets:
                    if (kind, destination) not in kept:
                        opened.append(await self._open(kind, destination))
                if self._closed:
                    raise OutputUnavailable("the session ended while its outputs were opening")
            except BaseException:
                for member in opened:
                    await self._close_member(member)
                raise
            removed = [m for m in self._members if m not in keep]
            self._members = keep + opened
            for member in removed:
                await self._close_member(member)
            return self.active

    async def send_aus(self, frame: AUFrame) -> None:
        """Hand ``frame`` to every output; one that fails or stalls is dropped (never raises)."""
        for member in list(self._members):
            try:
                async with asyncio.timeout(SEND_TIMEOUT_S):
                    await member.output.send_aus(frame)
            except TimeoutError:
                await self._drop(member, f"it took more than {SEND_TIMEOUT_S:g} s to take a frame")
            except Exception as exc:
                await self._drop(member, str(exc) or type(exc).__name__)

    async def close(self) -> None:
        """Close every output and free its destination (idempotent)."""
        self._closed = True
        members, self._members = self._members, []
        for member in members:
            await self._close_member(member)

    async def _open(self, kind: str, destination: Destination) -> _Member:
        self._forwarder.take(kind, destination, self._session_id)
        settings = self._forwarder.settings
        output: AUOutput
        try:
            if kind == "vmc":
                output = VmcOutput(host=destination.host, port=destination.port, shape_set=settings.vmc_shapes)
            elif kind == "livelink":
                output = LiveLinkOutput(
                    host=destination.host, port=destination.port, fps=self._fps, subject=settings.livelink_subject
                )
            else:
                output = await VTubeStudioOutput.connect(_vts_url(destination), token_path=settings.vts_token_path)
        except VTubeStudioError as exc:
            self._forwarder.release(kind, destination, self._session_id)
            raise OutputUnavailable(f"VTube Studio ({destination.name}) refused the plugin: {exc}") from None
        except ValueError as exc:  # a host name that does not resolve
            self._forwarder.release(kind, destination, self._session_id)
            raise OutputUnavailable(f"{kind} destination {destination.name!r}: {exc}") from None
        except BaseException:
            self._forwarder.release(kind, destination, self._session_id)
            raise
        log.info("session %s forwards to %s %s", self._session_id, kind, destination.describe())
        return _Member(kind, destination, output)

    async def _drop(self, member: _Member, reason: str) -> None:
        if member not in self._members:  # already closed: turned off, or the session ended meanwhile
            return
        self._members.remove(member)
        name = member.destination.name
        log.warning("session %s: stopped forwarding to %s %s: %s", self._session_id, member.kind, name, reason)
        await self._close_member(member)
        if self.on_stopped is not None:
            try:
                await self.on_stopped(member.kind, member.destination.name, reason)
            except Exception:
                log.exception("session %s: reporting a stopped output failed", self._session_id)

    async def _close_member(self, member: _Member) -> None:
        self._forwarder.release(member.kind, member.destination, self._session_id)
        try:
            await member.output.close()
        except Exception:
            log.exception("session %s: closing output %s failed", self._session_id, member.kind)


def _vts_url(destination: Destination) -> str:
    host = f"[{destination.host}]" if ":" in destination.host else destination.host
    return f"ws://{host}:{destination.port}"
