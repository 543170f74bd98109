"""Errors raised by the model package's loaders."""

from engine.errors import EngineError


class CheckpointError(EngineError, ValueError):
    """A checkpoint file could not be read or does not fit the network.

    The message names the file and what was wrong with it (unreadable or
    truncated file, wrong format or version, missing / unexpected keys, shape
    mismatches).
    """
