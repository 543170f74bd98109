"""The root of the engine's own errors, and the one for a missing optional part.

Every error the engine raises on purpose (bad input, a file it cannot use, a
port already taken, an optional package not installed) derives from
:class:`EngineError`, and each keeps the built-in class a caller would expect
as a second base (``ValueError`` for bad input, ``RuntimeError`` for an
environment that cannot do it, ``ImportError`` for a missing package). So
``avatar`` can print exactly these as one line and exit 2, while anything else
is a bug and keeps its traceback; and a server can hand the message to the
client that caused it.
"""

import importlib
from types import ModuleType

DISTRIBUTION = "avatar-engine"


class EngineError(Exception):
    """An error the engine raises on purpose; its message says what was wrong and what to do."""


class MissingExtraError(EngineError, ImportError):
    """An optional package is not installed; the message names the extra that installs it."""


def require(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import ``module``, or raise MissingExtraError naming the extra that provides it.

    Args:
        module: the import name, e.g. ``"torch"``.
        extra: this distribution's extra that installs it, e.g. ``"train"``.
        purpose: what needs it, for the message, e.g. ``"loading a .pth checkpoint"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{purpose} needs the Python package {module!r}, which is not installed: "
            f"pip install '{DISTRIBUTION}[{extra}]'"
        ) from exc
