"""A WebRTC session's "control" data channel: expression and liveness messages in, replies and ~1 s stats out.

The messages themselves are parsed and built in :mod:`engine.server.control`
(no I/O); this class only reads the channel, applies what it says to the live
session and sends the answers.
"""

import asyncio
import logging

from aiortc import RTCDataChannel

from engine.live import LiveSession
from engine.server.control import (
    ControlError,
    ExpressionUpdate,
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


class ControlChannel:
    """The client's control channel, once it opens one; messages before that are not sent."""

    def __init__(self, live: LiveSession) -> None:
        self._live = live
        self._channel: RTCDataChannel | None = None

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
            if isinstance(update, ExpressionUpdate):
                self._live.expression = apply_expression(self._live.expression, update)
                applied = "expression"
            else:
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
