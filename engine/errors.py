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


class UsageError(EngineError, ValueError):
    """A command-line flag or setting has a value that cannot work (the message names the flag)."""


class ModelFileError(EngineError, ValueError):
    """A weights file cannot be used by the runtime asked to run it (the message names the file)."""


_SOURCE_LOCATION_PREFIXES = ("Exception from ", "Check '")
"""Lines of a runtime's dump that say where in its C++ it failed, not what was wrong."""


def first_line(error: BaseException, limit: int = 160) -> str:
    """A library's exception as one short line: its type and its first meaningful lines.

    Runtimes put multi-line dumps into their messages, mostly where in their
    C++ the check failed; a user needs the file (the caller names it) and the gist.
    """
    lines = [line.strip() for line in str(error).splitlines()]
    meaningful = [line for line in lines if line and not line.startswith(_SOURCE_LOCATION_PREFIXES)]
    text = " ".join(meaningful[:2])  # OpenVINO: "FrontEnd API failed ...:" then the reason
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


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
