"""The control data channel's messages: text in, values or a refusal out (no I/O)."""

import json

import numpy as np
import pytest

from engine.au import ExpressionControl, au_index
from engine.au.liveness import LivenessSettings
from engine.server.control import (
    MAX_CONTROL_MESSAGE_BYTES,
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


def test_expression_message_round_trip() -> None:
    update = parse_control_message(
        json.dumps({"type": "expression", "bias": {"AU12": 2, "AU06": 1.5}, "gain": {"AU04": 0}})
    )
    assert update == ExpressionUpdate(bias={"AU12": 2.0, "AU06": 1.5}, gain={"AU04": 0.0})
    current = ExpressionControl()
    result = apply_expression(current, update)
    assert result.bias[au_index("AU12")] == 2.0 and result.gain[au_index("AU04")] == 0.0
    assert not current.bias.any(), "the current control is never modified"
    reset = apply_expression(
        result, parse_control_message(b'{"type": "expression", "reset": true, "bias": {"AU01": 1}}')
    )
    assert reset.bias[au_index("AU01")] == 1.0 and reset.bias[au_index("AU12")] == 0.0
    assert (reset.gain == 1.0).all()


@pytest.mark.parametrize(
    ("message", "words"),
    [
        ("{", "not valid JSON"),
        ("[1]", "JSON object"),
        ('{"type": "wink"}', "unknown message type"),
        ('{"type": "expression", "smile": 1}', "unknown field"),
        ('{"type": "expression", "bias": [1]}', "AU name -> number"),
        ('{"type": "expression", "bias": {"AU12": "2"}}', "must be a number"),
        ('{"type": "expression", "bias": {"AU12": true}}', "must be a number"),
        ('{"type": "expression", "reset": 1}', "true or false"),
        ('{"type": "liveness", "blinks": true}', "unknown field"),
        ('{"type": "liveness", "blink": 1}', "blink must be true or false"),
        ('{"type": "liveness", "head_motion_scale": "big"}', "must be a number"),
        ('{"type": "liveness", "blink_rate_per_min": true}', "must be a number"),
        ('{"type": "forward", "osc": true}', "unknown kind 'osc'; kinds: vmc, vts, livelink"),
        ('{"type": "forward", "vmc": false}', "vmc must be a destination name"),
        (" " * (MAX_CONTROL_MESSAGE_BYTES + 1), "too long"),
    ],
)
def test_malformed_messages_are_refused(message: str, words: str) -> None:
    with pytest.raises(ControlError, match=words):
        parse_control_message(message)


@pytest.mark.parametrize(
    ("update", "words"),
    [
        (ExpressionUpdate(bias={"AU99": 1.0}), "unknown action unit 'AU99'"),
        (ExpressionUpdate(bias={"smile": 1.0}), "unknown action unit 'smile'"),
        (ExpressionUpdate(bias={"AU12": 1.0, "AU06": 7.0}), "-5..5"),
        (ExpressionUpdate(gain={"AU12": -1.0}), "0..4"),
        (ExpressionUpdate(bias={"AU12": float("nan")}), "-5..5"),
    ],
)
def test_out_of_range_updates_apply_nothing(update: ExpressionUpdate, words: str) -> None:
    current = ExpressionControl()
    with pytest.raises(ControlError, match=words):
        apply_expression(current, update)
    assert not current.bias.any() and (current.gain == 1.0).all()


def test_liveness_message_changes_only_the_fields_it_names() -> None:
    update = parse_control_message(json.dumps({"type": "liveness", "blink": False, "head_motion_scale": 2}))
    assert update == LivenessUpdate({"blink": False, "head_motion_scale": 2.0})
    current = LivenessSettings()
    assert isinstance(update, LivenessUpdate)
    changed = apply_liveness(current, update)
    assert changed == LivenessSettings(blink=False, head_motion_scale=2.0)
    assert current == LivenessSettings(), "settings are frozen: the current ones never change"
    assert json.loads(applied_message("liveness")) == {"type": "applied", "of": "liveness"}


def test_forward_message_names_every_app_to_forward_to() -> None:
    update = parse_control_message(json.dumps({"type": "forward", "vmc": True, "livelink": "stage"}))
    assert update == ForwardUpdate({"vmc": None, "livelink": "stage"})
    assert parse_control_message('{"type": "forward"}') == ForwardUpdate({})  # stop them all
    applied = json.loads(applied_message("forward", forward={"vmc": "default"}))
    assert applied == {"type": "applied", "of": "forward", "forward": {"vmc": "default"}}


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"blink_rate_per_min": 41.0}, "0..40"),
        ({"head_motion_scale": -0.5}, "0..3"),
        ({"blink": True, "head_motion_scale": 9.0}, "0..3"),
    ],
)
def test_out_of_range_liveness_applies_nothing(changes: dict, words: str) -> None:
    with pytest.raises(ControlError, match=words):
        apply_liveness(LivenessSettings(), LivenessUpdate(changes))


def test_server_messages() -> None:
    assert json.loads(error_message("no")) == {"type": "error", "error": "no"}
    stats = json.loads(stats_message({"fps": 25.0, "latency_ms": {"p50": float("nan"), "p95": np.float32(3.5)}}))
    assert stats == {"type": "stats", "fps": 25.0, "latency_ms": {"p50": None, "p95": 3.5}}
