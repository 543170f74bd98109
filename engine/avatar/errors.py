"""Errors raised while preparing an avatar; both are engine errors and ``ValueError`` (bad user input)."""

from engine.errors import EngineError


class PortraitError(EngineError, ValueError):
    """The portrait cannot be used: unreadable, too large, or a bad face box."""


class NoFaceError(PortraitError):
    """No face was detected in the portrait (the user can give its box by hand)."""
