"""The WebRTC "control" data channel's messages: parsed and built here, moved elsewhere.

No I/O: text in, values out; values in, text out. ``engine/server/webrtc.py``
only reads the channel and sends what these functions build.

Client to server, one JSON object per message:

- ``{"type": "expression", "bias": {"AU12": 2.0, ...}, "gain": {"AU04": 0.0, ...}}``
  sets the sliders of the AUs named (the others keep their values): bias is
  added to the intensity, in -5..5; gain multiplies it, in 0..4 (see
  ``engine.au.ExpressionControl``). ``"reset": true`` first returns every AU to
  neutral (bias 0, gain 1). All of a message applies, or none of it.
- ``{"type": "liveness", "blink": true, "blink_rate_per_min": 15, "smoothing": true,
  "head_motion": true, "head_motion_scale": 1.0, "idle": true}`` changes the
  session's liveness (``engine.au.liveness.LivenessSettings``): the fields
  named change, the others keep their values. Switches are true/false; the
  blink rate is blinks a minute in a pause, 0..40; the head motion scale
  multiplies nods and sway, 0..3. All of a message applies, or none of it.
- ``{"type": "forward", "vmc": "default", "vts": true}`` forwards the session's
  face to exactly these avatar apps from now on (the kinds not named stop):
  each kind (``vmc``, ``vts``, ``livelink``) to one destination the server's
  operator allowed, by name, or ``true`` for the first (``GET /config`` lists
  them); ``{"type": "forward"}`` stops all. All of it applies, or none of it;
  the answer comes once the apps are open (VTube Studio: after it accepted us).

Server to client:

- ``{"type": "applied", "of": "expression"}`` (or ``"liveness"``; for
  ``"forward"`` also ``"forward": {kind: destination name}``, what now runs):
  the message was applied.
- ``{"type": "error", "error": "..."}``: a message was refused; nothing changed.
- ``{"type": "forward_stopped", "kind": ..., "destination": ..., "message": ...}``:
  an app failed mid-session and frames no longer go to it (the others go on).
- ``{"type": "stats", ...}`` about once a second (``engine/live/stats.py``).
"""

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from avatar_protocol import ForwardRequest, parse_forward
from engine.au import AU_NAMES, ExpressionControl, au_index
from engine.au.liveness import LivenessSettings
from engine.errors import EngineError

MAX_CONTROL_MESSAGE_BYTES = 16 * 1024
"""Longest control message accepted; a full 17-AU bias and gain message is under 1 KiB."""


class ControlError(EngineError, ValueError):
    """A control message that cannot be applied; its text goes back to the client."""


@dataclass(frozen=True)
class ExpressionUpdate:
    """What an "expression" message asks: AU name -> bias (-5..5) and AU name -> gain (0..4)."""

    bias: dict[str, float] = field(default_factory=dict)
    gain: dict[str, float] = field(default_factory=dict)
    reset: bool = False


@dataclass(frozen=True)
class LivenessUpdate:
    """What a "liveness" message asks: the LivenessSettings fields to change and their new values."""

    changes: dict[str, bool | float] = field(default_factory=dict)


@dataclass(frozen=True)
class ForwardUpdate:
    """What a "forward" message asks: forward to exactly these apps, kind -> destination name (None: the first)."""

    request: ForwardRequest = field(default_factory=dict)


LIVENESS_SWITCHES = ("blink", "smoothing", "head_motion", "idle")
LIVENESS_NUMBERS = ("blink_rate_per_min", "head_motion_scale")


def parse_control_message(message: str | bytes) -> ExpressionUpdate | LivenessUpdate | ForwardUpdate:
    """Parse one message from the client.

    Raises:
        ControlError: not JSON, not an object, an unknown type, or badly shaped
            fields. Range checks happen in :func:`apply_expression` and
            :func:`apply_liveness`.
    """
    size = len(message.encode() if isinstance(message, str) else message)
    if size > MAX_CONTROL_MESSAGE_BYTES:
        raise ControlError(f"message of {size} bytes is too long; at most {MAX_CONTROL_MESSAGE_BYTES}")
    try:
        data = json.loads(message)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ControlError(f"message is not valid JSON: {exc}") from exc
    except RecursionError:
        raise ControlError("message nests JSON too deeply") from None
    if not isinstance(data, dict):
        raise ControlError("message must be a JSON object")
    kind = data.get("type")
    if kind == "liveness":
        return _liveness_update(data)
    if kind == "forward":
        try:
            return ForwardUpdate(parse_forward({key: value for key, value in data.items() if key != "type"}))
        except ValueError as exc:
            raise ControlError(str(exc)) from None
    if kind != "expression":
        raise ControlError(f"unknown message type {kind!r}; accepted: 'expression', 'liveness', 'forward'")
    unknown = sorted(set(data) - {"type", "bias", "gain", "reset"})
    if unknown:
        raise ControlError(f"unknown field(s) {', '.join(unknown)}; accepted: bias, gain, reset")
    reset = data.get("reset", False)
    if not isinstance(reset, bool):
        raise ControlError("reset must be true or false")
    return ExpressionUpdate(bias=_au_values(data, "bias"), gain=_au_values(data, "gain"), reset=reset)


def apply_expression(current: ExpressionControl, update: ExpressionUpdate) -> ExpressionControl:
    """A new ExpressionControl: ``current`` with ``update`` applied (``current`` is not modified).

    Raises:
        ControlError: an unknown AU name or a value out of range; nothing is applied.
    """
    for name in (*update.bias, *update.gain):
        try:
            au_index(name)
        except ValueError:
            raise ControlError(f"unknown action unit {name!r}; known: {', '.join(AU_NAMES)}") from None
    result = ExpressionControl() if update.reset else ExpressionControl(current.bias.copy(), current.gain.copy())
    try:
        for name, value in update.bias.items():
            result.set(name, bias=value)
        for name, value in update.gain.items():
            result.set(name, gain=value)
    except ValueError as exc:
        raise ControlError(str(exc)) from exc
    return result


def apply_liveness(current: LivenessSettings, update: LivenessUpdate) -> LivenessSettings:
    """New settings: ``current`` with ``update``'s fields changed (values checked; ``current`` is frozen).

    Raises:
        ControlError: a value out of range; nothing is applied.
    """
    try:
        return dataclasses.replace(current, **update.changes)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ControlError(str(exc)) from exc


def applied_message(of: str, **details: Any) -> str:
    """The acknowledgement of an applied message of type ``of`` (with ``details``, e.g. what now runs)."""
    return json.dumps({"type": "applied", "of": of, **details})


def error_message(error: str) -> str:
    """A refusal: ``error`` says what was wrong and what is accepted."""
    return json.dumps({"type": "error", "error": error})


def stats_message(stats: dict[str, Any]) -> str:
    """A stats report; non-finite numbers become null (JSON has no NaN)."""
    return json.dumps({"type": "stats", **_finite(stats)})


def _liveness_update(data: dict[str, Any]) -> LivenessUpdate:
    accepted = (*LIVENESS_SWITCHES, *LIVENESS_NUMBERS)
    unknown = sorted(set(data) - {"type", *accepted})
    if unknown:
        raise ControlError(f"unknown field(s) {', '.join(unknown)}; accepted: {', '.join(accepted)}")
    changes: dict[str, bool | float] = {}
    for name in LIVENESS_SWITCHES:
        if name in data:
            if not isinstance(data[name], bool):
                raise ControlError(f"{name} must be true or false, got {data[name]!r}")
            changes[name] = data[name]
    for name in LIVENESS_NUMBERS:
        if name in data:
            value = data[name]
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ControlError(f"{name} must be a number, got {value!r}")
            changes[name] = float(value)
    return LivenessUpdate(changes)


def _au_values(data: dict[str, Any], key: str) -> dict[str, float]:
    values = data.get(key, {})
    if not isinstance(values, dict):
        raise ControlError(f'{key} must be an object of AU name -> number, e.g. {{"AU12": 2.0}}')
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ControlError(f"{key} for {name} must be a number, got {value!r}")
    return {name: float(value) for name, value in values.items()}


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value
