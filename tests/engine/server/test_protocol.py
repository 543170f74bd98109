"""The server's side of the WebSocket protocol: the state machine, the engine's names in its messages."""

import json
import struct

import numpy as np
import pytest

import avatar_protocol
from avatar_protocol import parse_server_message
from engine.au import AU_NAMES, N_AUS, au_index
from engine.au.arkit import BLENDSHAPE_NAMES, LIVE_LINK_FACE_CSV_NAMES, aus_to_blendshapes
from engine.audio import MAX_CHANNELS, MAX_INPUT_RATE_HZ, MIN_INPUT_RATE_HZ, SAMPLE_RATE_HZ
from engine.server import protocol as p


def hello(**fields: object) -> str:
    return json.dumps({"type": "hello", "version": 2, **fields})


def connection(**fields: object) -> p.ServerConnection:
    conn = p.ServerConnection(max_message_bytes=1000, default_fps=25, idle_timeout_s=30.0)
    conn.receive(hello(**fields))
    return conn


def check(error: pytest.ExceptionInfo[p.ProtocolError], code: str, close_code: int, *needles: str) -> None:
    assert error.value.code == code
    assert error.value.close_code == close_code
    for needle in needles:
        assert needle in error.value.message


def sample_aus() -> np.ndarray:
    aus = np.zeros(N_AUS, np.float32)
    aus[au_index("AU12")], aus[au_index("AU25")], aus[au_index("AU26")] = 1.5, 2.5, 1.0
    return aus


def test_the_codec_limits_are_the_audio_front_ends() -> None:
    codec = avatar_protocol
    assert (codec.MIN_SAMPLE_RATE_HZ, codec.MAX_SAMPLE_RATE_HZ) == (MIN_INPUT_RATE_HZ, MAX_INPUT_RATE_HZ)
    assert codec.MAX_CHANNELS == MAX_CHANNELS and codec.CLOCK_RATE_HZ == SAMPLE_RATE_HZ


def test_a_session_in_order() -> None:
    conn = p.ServerConnection(max_message_bytes=1000, default_fps=25, idle_timeout_s=30.0)
    assert conn.state == "hello"
    assert isinstance(conn.receive(hello(channels=2, outputs=["aus", "blendshapes"])), p.Hello)
    assert conn.state == "streaming"
    ready = json.loads(conn.ready("ws-1", lookahead_samples=720))
    assert ready["blendshape_names"] == list(BLENDSHAPE_NAMES) and ready["au_names"] == list(AU_NAMES)
    assert ready["blendshape_order"] == "unreal" and ready["lookahead_samples"] == 720
    assert ready["idle_timeout_s"] == 30.0 and ready["version"] == 2
    chunk = conn.receive(struct.pack("<4h", 1, 2, 3, 4))
    assert isinstance(chunk, p.AudioChunk) and chunk.samples.shape == (2, 2)
    aus = sample_aus()
    records = [parse_server_message(conn.frame(i, i * 640, 10, aus)) for i in range(3)]
    assert [r.seq for r in records] == [0, 1, 2] and [r.audio_sample for r in records] == [0, 640, 1280]
    np.testing.assert_allclose(records[0].blendshapes, aus_to_blendshapes(aus))
    jpeg = parse_server_message(conn.jpeg(2, 1280, 10, b"jpeg"))
    assert jpeg.seq == 3
    assert isinstance(conn.receive(p.END_MESSAGE), p.EndOfStream)
    assert json.loads(conn.end(1920)) == {"type": "end", "frames": 3, "audio_samples": 1920}


@pytest.mark.parametrize("late", [b"\x00\x00", p.END_MESSAGE, hello(), bytes(5000)])
def test_anything_after_the_end_message_is_unexpected(late: bytes | str) -> None:
    conn = connection()
    conn.receive(p.END_MESSAGE)
    with pytest.raises(p.ProtocolError) as error:
        conn.receive(late)
    check(error, "unexpected_message", 1008, "nothing may follow the end message")


def test_ready_names_only_the_sections_records_carry() -> None:
    frames_only = json.loads(connection(outputs=["frames"]).ready("ws-1", lookahead_samples=720, frame_size_px=256))
    assert frames_only["au_names"] == [] and frames_only["blendshape_names"] == []
    assert frames_only["frame_size_px"] == 256
    shapes_only = json.loads(connection(outputs=["blendshapes"]).ready("ws-1", lookahead_samples=720))
    assert shapes_only["au_names"] == [] and len(shapes_only["blendshape_names"]) == 52


def test_only_requested_sections_are_sent() -> None:
    record = parse_server_message(connection(outputs=["frames"]).frame(0, 0, 0, sample_aus()))
    assert record.aus is None and record.blendshapes is None
    record = parse_server_message(connection(outputs=["blendshapes"]).frame(0, 0, 0, sample_aus()))
    assert record.aus is None and record.blendshapes.shape == (52,)


def test_live_link_face_order_swaps_jaw_and_mouth_sides_and_names_them() -> None:
    aus = sample_aus()
    unreal = connection(outputs=["blendshapes"])
    app = connection(outputs=["blendshapes"], blendshape_order="livelinkface")
    names = json.loads(app.ready("ws-1", lookahead_samples=720))["blendshape_names"]
    assert names == list(LIVE_LINK_FACE_CSV_NAMES)
    assert names[15:17] == ["jawRight", "jawLeft"] and names[21:23] == ["mouthRight", "mouthLeft"]
    by_unreal = parse_server_message(unreal.frame(0, 0, 0, aus)).blendshapes
    by_app = parse_server_message(app.frame(0, 0, 0, aus)).blendshapes
    for name in BLENDSHAPE_NAMES:  # the same value under the same name, wherever it sits
        assert by_app[names.index(name)] == by_unreal[BLENDSHAPE_NAMES.index(name)]


def test_binary_before_hello_is_refused() -> None:
    conn = p.ServerConnection(max_message_bytes=1000, default_fps=25, idle_timeout_s=30.0)
    with pytest.raises(p.ProtocolError) as error:
        conn.receive(b"\x00\x01")
    check(error, "unexpected_binary", 1003, "first message must be the hello")


@pytest.mark.parametrize("text", ['{"type": "audio", "data": "AAAA"}', "[0, 1, 2]", "not json"])
def test_text_where_audio_is_expected_is_refused(text: str) -> None:
    with pytest.raises(p.ProtocolError) as error:
        connection().receive(text)
    check(error, "unexpected_text", 1003, "binary messages of s16le PCM")


def test_end_with_extra_keys_is_refused() -> None:
    with pytest.raises(p.ProtocolError) as error:
        connection().receive('{"type": "end", "flush": false}')
    check(error, "bad_message", 1008, "no other keys")


def test_messages_over_the_limit_are_refused_before_parsing() -> None:
    conn = connection()
    conn.receive(bytes(1000))
    with pytest.raises(p.ProtocolError) as error:
        conn.receive(bytes(1002))
    check(error, "message_too_big", 1009, "1002 bytes", "limit of 1000 bytes")
    fresh = p.ServerConnection(max_message_bytes=10, default_fps=25, idle_timeout_s=30.0)
    with pytest.raises(p.ProtocolError) as error:
        fresh.receive(hello())
    assert error.value.code == "message_too_big"


def test_elapsed_us_is_whole_microseconds_and_never_negative() -> None:
    assert p.elapsed_us(1.0, 1.0015) == 1500 and p.elapsed_us(2.0, 1.0) == 0
