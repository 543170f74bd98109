"""Errors of the app outputs (VMC, VTube Studio, Live Link)."""

from engine.errors import EngineError


class OutputUnavailable(EngineError, RuntimeError):
    """An output cannot run: a missing optional package (the message names the extra to install), or a
    receiver that refused us (VTube Studio denied the plugin). The session that asked for it cannot use it."""
