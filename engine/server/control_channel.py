"""A WebRTC session's "control" data channel: expression, liveness and forward messages in, replies and ~1 s
stats out.

The messages themselves are parsed and built in :mod:`engine.server.control`
(no I/O); this class only reads the channel, applies what it says to the live
session (and to its forwarding to avatar apps) and sends the answers.
"""

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from aiortc import RTCDataChannel

from avatar_protocol import ForwardStopped
from engine.live import LiveSession
from engine.output.errors import ForwardRefused, OutputUnavailable
from engine.output.forward import SessionForwards
from engine.server.control import (
    ControlError,
    ExpressionUpdate,
    ForwardUpdate,
    LivenessUpdate,
    applied_message,
    apply_expression,
    apply_liveness,
    error_message,
    parse_control_message,
    stats_message,
)

logger = logging.getLogger(__name__)

CONTROL_CHANNEL_LABEL = "control"
"""The data channel the client opens for expression messages and stats."""
STATS_INTERVAL_S = 1.0
"""Seconds between two stats messages."""

Spawn = Callable[[Coroutine[Any, Any, None], str], asyncio.Task[None]]
"""Runs a coroutine as one of the session's tasks (cancelled when the session ends)."""


class ControlChannel:
    """The client's control channel, once it opens one; messages before that are not sent.

    forwards: the session's avatar-app outputs, which "forward" messages choose.
    spawn: starts the session's tasks (a "forward" message may take seconds: VTube Studio).
    """

    def __init__(self, live: LiveSession, forwards: SessionForwards, spawn: Spawn) -> None:
        self._live = live
        self._forwards = forwards
        self._spawn = spawn
        self._channel: RTCDataChannel | None = None
        self._wanted_forward: ForwardUpdate | None = None
        self._forwarding: asyncio.Task[None] | None = None

    def on_datachannel(self, channel: RTCDataChannel) -> None:
        """The peer connection's "datachannel" event: adopt the control channel, ignore others."""
        if channel.label != CONTROL_CHANNEL_LABEL:
            logger.info("session %s: ignoring data channel %r", self._live.session_id, channel.label)
            return
        self._channel = channel
        channel.on("message", self._on_message)

    async def report_stats(self) -> None:
        """Send the live session's stats every ``STATS_INTERVAL_S``, until cancelled."""
        while True:
            await asyncio.sleep(STATS_INTERVAL_S)
            self.send(stats_message(self._live.stats_report()))

    async def forward_stopped(self, kind: str, destination: str, message: str) -> None:
        """Tell the client an app failed and frames no longer go to it (``SessionForwards``' ``on_stopped``)."""
        self.send(ForwardStopped(kind, destination, message).to_json())

    def send(self, text: str) -> None:
        """Send ``text`` if the channel is open (a closing channel only means the session is ending)."""
        if self._channel is not None and self._channel.readyState == "open":
            try:
                self._channel.send(text)
            except Exception as exc:
                logger.info("session %s: control message not sent: %s", self._live.session_id, exc)

    def _on_message(self, message: str | bytes) -> None:
        # Runs inside aiortc's SCTP receive path: nothing may escape from here.
        try:
            update = parse_control_message(message)
            if isinstance(update, ForwardUpdate):
                self._request_forward(update)
                return
            if isinstance(update, ExpressionUpdate):
                self._live.expression = apply_expression(self._live.expression, update)
                applied = "expression"
            else:
                assert isinstance(update, LivenessUpdate)
                self._live.liveness = apply_liveness(self._live.liveness, update)
                applied = "liveness"
        except ControlError as exc:
            self.send(error_message(str(exc)))
            return
        except Exception:
            logger.exception("session %s: control message failed", self._live.session_id)
            self.send(error_message("internal error (logged on the server)"))
            return
        self.send(applied_message(applied))

    def _request_forward(self, update: ForwardUpdate) -> None:
        """Apply the newest "forward" message; one still waiting when a newer one comes is skipped, unanswered."""
        self._wanted_forward = update
        if self._forwarding is None or self._forwarding.done():
            self._forwarding = self._spawn(self._apply_forwards(), "forward")

    async def _apply_forwards(self) -> None:
        while self._wanted_forward is not None:
            update, self._wanted_forward = self._wanted_forward, None
            try:
                active = await self._forwards.choose(list(update.request.items()))
            except (ForwardRefused, OutputUnavailable) as exc:
                self.send(error_message(str(exc)))
                continue
            self.send(applied_message("forward", forward=dict(active)))
