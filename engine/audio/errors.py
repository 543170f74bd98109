"""Errors of the audio front end.

Both are engine errors and ``ValueError``: the caller handed us audio we cannot use, and
the message says what was wrong and what is accepted, so that a server can
pass it straight back to the client that sent the audio.
"""

from engine.errors import EngineError


class AudioFormatError(EngineError, ValueError):
    """A chunk or stream description is not in a format the front end accepts
    (sample rate, channel count, array shape, dtype, NaN/Inf samples)."""


class AudioFileError(EngineError, ValueError):
    """An audio file cannot be loaded: missing, unreadable, corrupt, without
    an audio stream, or in a format the front end does not accept. The
    message names the file and the cause."""
