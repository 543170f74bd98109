"""Property-based tests (hypothesis) of what clients send: any input is accepted or refused in the module's
own terms, never with another exception; what is accepted means what was sent."""

import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avatar_protocol import (
    ENCODINGS,
    HELLO_KEYS,
    OUTPUTS,
    SAMPLE_FORMATS,
    AudioChunk,
    EndOfStream,
    Hello,
    ProtocolError,
    parse_hello,
)
from engine.au import AU_NAMES, ExpressionControl
from engine.server.control import ControlError, apply_expression, parse_control_message
from engine.server.offer import OfferError, check_offer
from engine.server.protocol import ServerConnection
from tests.fuzz.seeds import OFFER

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


@st.composite
def hellos(draw: st.DrawFn) -> Hello:
    outputs = draw(st.lists(st.sampled_from(OUTPUTS), min_size=1, max_size=3, unique=True))
    return Hello(
        sample_rate_hz=draw(st.integers(8000, 48000)),
        sample_format=draw(st.sampled_from(sorted(SAMPLE_FORMATS))),
        channels=draw(st.integers(1, 8)),
        fps=draw(st.none() | st.integers(1, 100)),
        outputs=tuple(outputs),
        encoding=draw(st.sampled_from(ENCODINGS)),
    )


@SETTINGS
@given(hellos())
def test_a_valid_hello_means_what_it_says(hello: Hello) -> None:
    parsed = parse_hello(hello.to_json(), default_fps=25)
    assert parsed == (hello if hello.fps is not None else Hello(**{**hello.__dict__, "fps": 25}))


@SETTINGS
@given(st.dictionaries(st.sampled_from(HELLO_KEYS), json_values, max_size=len(HELLO_KEYS)))
def test_any_values_in_a_hello_are_accepted_or_refused(body: dict) -> None:
    body = {"type": "hello", "version": 1, **body}
    try:
        hello = parse_hello(json.dumps(body), default_fps=25)
    except ProtocolError as error:
        assert error.code in ("bad_hello", "bad_message", "unsupported_version", "unsupported_audio_format")
        return
    assert hello.sample_format in SAMPLE_FORMATS and 1 <= hello.channels <= 8 and hello.encoding in ENCODINGS


@SETTINGS
@given(hellos(), st.lists(st.binary(max_size=64) | json_values.map(json.dumps), max_size=8))
def test_any_messages_after_a_hello_are_audio_an_end_or_an_error(hello: Hello, messages: list) -> None:
    connection = ServerConnection(max_message_bytes=1 << 16, default_fps=25, idle_timeout_s=12.0)
    connection.receive(hello.to_json())
    for message in messages:
        try:
            event = connection.receive(message)
        except ProtocolError:
            return
        if isinstance(event, AudioChunk):
            assert isinstance(message, bytes) and event.samples.shape[1] == hello.channels
            assert event.samples.size * hello.sample_dtype.itemsize == len(message)
        else:
            assert isinstance(event, EndOfStream) and json.loads(message) == {"type": "end"}


@SETTINGS
@given(
    st.dictionaries(
        st.sampled_from(["type", "bias", "gain", "reset", "other"]),
        json_values | st.dictionaries(st.sampled_from([*AU_NAMES, "AU99"]), st.floats(allow_nan=True), max_size=4),
        max_size=5,
    )
)
def test_control_messages_apply_whole_and_in_range_or_not_at_all(body: dict) -> None:
    body.setdefault("type", "expression")
    try:
        updated = apply_expression(ExpressionControl(), parse_control_message(json.dumps(body)))
    except ControlError:
        return
    assert np.all(np.isfinite(updated.bias)) and np.all(np.isfinite(updated.gain))
    assert np.all(np.abs(updated.bias) <= 5) and np.all((updated.gain >= 0) & (updated.gain <= 4))


OFFER_LINES = OFFER.split("\r\n")


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.integers(0, len(OFFER_LINES) - 1),
            st.sampled_from(["drop", "duplicate", "truncate", "garble"]),
            st.text(max_size=12),
        ),
        max_size=4,
    )
)
def test_a_mangled_offer_is_refused_with_a_reason_or_accepted(edits: list) -> None:
    lines = list(OFFER_LINES)
    for index, action, text in edits:
        index %= max(1, len(lines))
        if not lines:
            break
        if action == "drop":
            del lines[index]
        elif action == "duplicate":
            lines.insert(index, lines[index])
        elif action == "truncate":
            lines[index] = lines[index][: len(lines[index]) // 2]
        else:
            lines[index] = lines[index][:2] + text + lines[index][2:]
    try:
        check_offer("\r\n".join(lines))
    except OfferError as error:
        assert str(error).startswith(("the offer", "malformed SDP")), error


def test_the_unmangled_offer_is_accepted() -> None:
    check_offer(OFFER)
