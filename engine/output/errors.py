"""Errors of the app outputs (VMC, VTube Studio, Live Link)."""

from engine.errors import EngineError


class OutputUnavailable(EngineError, RuntimeError):
    """An output cannot run: a missing optional package (the message names the extra to install), a
    receiver that refused us (VTube Studio denied the plugin) or cannot be reached, or a destination another
    session is using. The session that asked for it cannot use it now."""


class ForwardRefused(EngineError, ValueError):
    """A session asked to forward to a kind or a destination name the server's operator did not allow."""
