"""The wire codec (avatar_protocol) without I/O and without the engine: strings and bytes in and out."""

import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest

import avatar_protocol as p

PROTOCOL_MD = Path(__file__).resolve().parents[2] / "clients" / "PROTOCOL.md"


def hello(**fields: object) -> str:
    return json.dumps({"type": "hello", "version": 2, **fields})


def check(error: pytest.ExceptionInfo[p.ProtocolError], code: str, close_code: int, *needles: str) -> None:
    assert error.value.code == code
    assert error.value.close_code == close_code
    for needle in needles:
        assert needle in error.value.message


# ---------------------------------------------------------------- hello


def test_minimal_hello_takes_the_documented_defaults() -> None:
    parsed = p.parse_hello(hello(), default_fps=30)
    assert parsed == p.Hello(
        sample_rate_hz=16000,
        sample_format="s16le",
        channels=1,
        fps=30,
        outputs=("aus",),
        encoding="binary",
        blendshape_order="unreal",
    )


def test_full_hello_round_trips() -> None:
    sent = p.Hello(
        sample_rate_hz=44100,
        sample_format="f32le",
        channels=2,
        fps=30,
        outputs=("aus", "blendshapes", "frames"),
        encoding="json",
        blendshape_order="livelinkface",
        forward={"vmc": None, "livelink": "stage"},
    )
    assert p.parse_hello(sent.to_json(), default_fps=25) == sent
    assert sent.frame_bytes == 8


def test_integral_numbers_are_integers_whatever_the_json_spelling() -> None:
    parsed = p.parse_hello(hello(sample_rate_hz=16000.0, channels=2.0, fps=30.0, version=2.0), default_fps=25)
    assert (parsed.sample_rate_hz, parsed.channels, parsed.fps) == (16000, 2, 30)
    assert all(type(v) is int for v in (parsed.sample_rate_hz, parsed.channels, parsed.fps, parsed.version))


@pytest.mark.parametrize("rate", [7999, 96000, 16000.5, "16000", True, None, float("nan")])
def test_unsupported_sample_rate_says_which_are_supported(rate: object) -> None:
    with pytest.raises(p.ProtocolError) as error:
        p.parse_hello(hello(sample_rate_hz=rate), default_fps=25)
    check(error, "unsupported_audio_format", 1008, f"sample_rate_hz {rate!r}", "from 8000 to 48000 Hz")


@pytest.mark.parametrize(
    ("fields", "code", "needle"),
    [
        ({"sample_format": "s24le"}, "unsupported_audio_format", "s16le, f32le"),
        ({"channels": 0}, "unsupported_audio_format", "from 1 to 8"),
        ({"channels": 9}, "unsupported_audio_format", "from 1 to 8"),
        ({"fps": 0}, "bad_hello", "from 1 to 100"),
        ({"fps": 101}, "bad_hello", "from 1 to 100"),
        ({"fps": 25.5}, "bad_hello", "from 1 to 100"),
        ({"outputs": []}, "bad_hello", "aus, blendshapes, frames"),
        ({"outputs": ["aus", "aus"]}, "bad_hello", "distinct"),
        ({"outputs": ["visemes"]}, "bad_hello", "aus, blendshapes, frames"),
        ({"outputs": "aus"}, "bad_hello", "list"),
        ({"encoding": "msgpack"}, "bad_hello", "binary, json"),
        ({"blendshape_order": "arkit"}, "bad_hello", "supported: unreal, livelinkface"),
        ({"version": 1}, "unsupported_version", "speaks version 2"),
        ({"version": 3}, "unsupported_version", "changes from version 1"),
        ({"sample_rate": 48000}, "bad_hello", "unknown key(s) in hello: sample_rate; known keys: type, version"),
    ],
)
def test_bad_hello_fields_are_named(fields: dict, code: str, needle: str) -> None:
    with pytest.raises(p.ProtocolError) as error:
        p.parse_hello(hello(**fields), default_fps=25)
    check(error, code, 1008, needle)


def test_forward_names_a_destination_or_takes_the_first() -> None:
    parsed = p.parse_hello(hello(forward={"vmc": True, "vts": "studio-2", "livelink": "stage"}), default_fps=25)
    assert parsed.forward == {"vmc": None, "vts": "studio-2", "livelink": "stage"}
    assert json.loads(parsed.to_json())["forward"] == {"vmc": True, "vts": "studio-2", "livelink": "stage"}
    assert p.parse_hello(hello(forward={}), default_fps=25).forward == {}
    assert "forward" not in json.loads(p.Hello().to_json())  # a hello without it is what version 2 always sent


@pytest.mark.parametrize(
    ("forward", "needle"),
    [
        (["vmc"], "must be an object of kind -> destination name or true"),
        ({"osc": True}, "unknown kind 'osc'; kinds: vmc, vts, livelink"),
        ({"vmc": False}, "vmc must be a destination name (1 to 64 characters) or true, got False"),
        ({"vmc": ""}, "1 to 64 characters"),
        ({"vmc": "x" * 65}, "1 to 64 characters"),
        ({"vts": 8001}, "vts must be a destination name"),
    ],
)
def test_a_malformed_forward_is_refused(forward: object, needle: str) -> None:
    with pytest.raises(p.ProtocolError) as error:
        p.parse_hello(hello(forward=forward), default_fps=25)
    check(error, "bad_hello", 1008, needle)


@pytest.mark.parametrize(
    ("text", "code", "needle"),
    [
        ("hello", "bad_message", "not valid JSON"),
        ("[1, 2]", "bad_message", "JSON object, got list"),
        ('{"type": "end"}', "bad_hello", "must be the hello"),
        ('{"type": "hello"}', "bad_hello", '"version": 2'),
    ],
)
def test_a_malformed_hello_is_refused_clearly(text: str, code: str, needle: str) -> None:
    with pytest.raises(p.ProtocolError) as error:
        p.parse_hello(text, default_fps=25)
    check(error, code, 1008, needle)


# ---------------------------------------------------------------- audio


def test_s16le_stereo_is_deinterleaved_into_rows() -> None:
    data = struct.pack("<6h", 1, -1, 2, -2, 32767, -32768)
    chunk = p.decode_audio(data, p.Hello(channels=2))
    assert chunk.samples.dtype == np.int16 and chunk.samples.dtype.isnative
    np.testing.assert_array_equal(chunk.samples, [[1, -1], [2, -2], [32767, -32768]])


def test_f32le_round_trips_through_encode_audio() -> None:
    samples = np.array([[0.5, -0.25], [1.0, 0.0]], np.float32)
    data = p.encode_audio(samples, "f32le")
    assert data == struct.pack("<4f", 0.5, -0.25, 1.0, 0.0)
    np.testing.assert_array_equal(p.decode_audio(data, p.Hello(sample_format="f32le", channels=2)).samples, samples)


def test_encode_audio_scales_float_to_s16() -> None:
    assert p.encode_audio(np.array([0.0, 1.0, -1.0, 2.0]), "s16le") == struct.pack("<4h", 0, 32767, -32767, 32767)


@pytest.mark.parametrize(
    ("fmt", "channels", "length", "unit"), [("s16le", 1, 3, 2), ("s16le", 2, 6, 4), ("f32le", 2, 20, 8)]
)
def test_truncated_audio_is_an_error_naming_the_frame_size(fmt: str, channels: int, length: int, unit: int) -> None:
    with pytest.raises(p.ProtocolError) as error:
        p.decode_audio(bytes(length), p.Hello(sample_format=fmt, channels=channels))
    left = length % unit
    check(error, "truncated_audio", 1007, f"{length} bytes", f"multiple of {unit} bytes", f"{left} byte(s) left over")


def test_non_finite_float_audio_is_refused() -> None:
    with pytest.raises(p.ProtocolError) as error:
        p.decode_audio(struct.pack("<2f", 0.0, float("nan")), p.Hello(sample_format="f32le"))
    check(error, "bad_audio", 1007, "NaN")


def test_empty_audio_is_zero_rows() -> None:
    assert p.decode_audio(b"", p.Hello(channels=2)).samples.shape == (0, 2)


# ---------------------------------------------------------------- records


def example_aus() -> np.ndarray:
    """The worked example's AUs: AU12 (9th) 1.5, AU25 (15th) 2.5, AU26 (16th) 1.0, 17 values."""
    aus = np.zeros(17, np.float32)
    aus[8], aus[14], aus[15] = 1.5, 2.5, 1.0
    return aus


def worked_example_bytes() -> bytes:
    text = PROTOCOL_MD.read_text(encoding="utf-8")
    block = re.search(r"<!-- worked-example: frame-record -->\s*```text\n(.*?)```", text, re.S)
    assert block, "PROTOCOL.md lost its worked example"
    return bytes.fromhex("".join(line[6:] for line in block.group(1).splitlines()))


def test_protocol_md_worked_example_is_what_the_code_builds_and_parses() -> None:
    data = worked_example_bytes()
    record = p.FrameRecord(seq=2, index=2, audio_sample=1280, server_latency_us=1234, aus=example_aus())
    assert p.encode_frame_record(record) == data
    parsed = p.parse_server_message(data)
    assert isinstance(parsed, p.FrameRecord)
    assert (parsed.seq, parsed.index, parsed.audio_sample, parsed.server_latency_us) == (2, 2, 1280, 1234)
    assert parsed.time_s == 0.08 and parsed.blendshapes is None
    np.testing.assert_array_equal(parsed.aus, example_aus())


def test_header_layout_is_32_bytes_little_endian() -> None:
    assert p.RECORD_HEADER.size == 32
    record = p.FrameRecord(seq=0x01020304, index=7, audio_sample=2**40 + 5, server_latency_us=9)
    data = p.encode_frame_record(record)
    assert data[:8] == b"AVTR\x02\x01\x00\x00"
    assert data[8:12] == bytes([4, 3, 2, 1])
    assert data[16:24] == (2**40 + 5).to_bytes(8, "little")
    assert len(data) == 32  # a header-only record (outputs ["frames"])


def test_frame_record_with_blendshapes_round_trips() -> None:
    aus = np.linspace(0, 5, 17, dtype=np.float32)
    shapes = np.linspace(0, 1, 52, dtype=np.float32)
    data = p.encode_frame_record(
        p.FrameRecord(seq=1, index=1, audio_sample=640, server_latency_us=0, aus=aus, blendshapes=shapes)
    )
    assert len(data) == 308 and data[6] == 0x3
    parsed = p.parse_server_message(data)
    np.testing.assert_array_equal(parsed.aus, aus)
    np.testing.assert_array_equal(parsed.blendshapes, shapes)


def test_server_latency_saturates_and_never_goes_negative() -> None:
    def latency(us: int) -> int:
        record = p.FrameRecord(seq=0, index=0, audio_sample=0, server_latency_us=us)
        return p.parse_server_message(p.encode_frame_record(record)).server_latency_us

    assert latency(2**40) == 2**32 - 1 and latency(-5) == 0


def test_json_records_carry_the_same_values_rounded() -> None:
    aus = np.full(17, 1.23456789, np.float32)
    shapes = np.full(52, 0.123456, np.float32)
    record = p.FrameRecord(seq=3, index=4, audio_sample=2560, server_latency_us=77, aus=aus, blendshapes=shapes)
    text = p.encode_frame_record(record, "json")
    body = json.loads(text)
    assert body["type"] == "frame" and body["time_s"] == 0.16 and body["aus"][0] == 1.2346
    assert body["server_latency_us"] == 77 and "latency_us" not in body
    parsed = p.parse_server_message(text)
    assert (parsed.seq, parsed.index, parsed.audio_sample, parsed.server_latency_us) == (3, 4, 2560, 77)
    np.testing.assert_allclose(parsed.aus, aus, atol=1e-4)
    np.testing.assert_allclose(parsed.blendshapes, shapes, atol=1e-4)


@pytest.mark.parametrize("encoding", ["binary", "json"])
def test_jpeg_records_round_trip(encoding: str) -> None:
    jpeg = b"\xff\xd8\xff\xe0 not really a picture \xff\xd9"
    record = p.JpegRecord(seq=5, index=3, audio_sample=1920, server_latency_us=12, jpeg=jpeg)
    message = p.encode_jpeg_record(record, encoding)
    if encoding == "binary":
        assert message[:8] == b"AVTR\x02\x02\x00\x00" and message[28:32] == bytes(4) and message[32:] == jpeg
    parsed = p.parse_server_message(message)
    assert isinstance(parsed, p.JpegRecord)
    assert (parsed.seq, parsed.index, parsed.audio_sample, parsed.server_latency_us, parsed.jpeg) == (
        5,
        3,
        1920,
        12,
        jpeg,
    )


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"AVTR", "shorter than its 32-byte header"),
        (b"XXXX" + bytes(28), "magic"),
        (struct.pack("<4sBBHIIQIHH", b"AVTR", 1, 1, 0, 0, 0, 0, 0, 0, 0), "version 1; this parser reads 2"),
        (struct.pack("<4sBBHIIQIHH", b"AVTR", 2, 9, 0, 0, 0, 0, 0, 0, 0), "record type 9"),
        (struct.pack("<4sBBHIIQIHH", b"AVTR", 2, 1, 1, 0, 0, 0, 0, 17, 0), "header announces 100"),
        (struct.pack("<4sBBHIIQIHH", b"AVTR", 2, 1, 0, 0, 0, 0, 0, 1, 0) + bytes(4), "flags"),
        ('{"type": "frame", "seq": 1}', "malformed"),
        ('{"type": "frame", "seq": 0, "index": 0, "audio_sample": 0, "latency_us": 0}', "server_latency_us"),
        ('{"type": "frame", "seq": 0, "index": 0, "audio_sample": 0, "server_latency_us": 0, "aus": [[1]]}', "shape"),
        ('{"type": "mystery"}', "unknown server message type"),
    ],
)
def test_bad_records_are_refused_by_the_parser(data: bytes | str, needle: str) -> None:
    with pytest.raises(p.ProtocolError) as error:
        p.parse_server_message(data)
    assert error.value.code == "bad_record" and needle in error.value.message


def ready(**fields: object) -> p.Ready:
    base: dict = {
        "session_id": "ws-7",
        "fps": 25,
        "outputs": ("aus",),
        "encoding": "binary",
        "max_message_bytes": 1000,
        "lookahead_samples": 720,
        "idle_timeout_s": 30.0,
        "au_names": tuple(f"AU{i:02d}" for i in range(17)),
    }
    return p.Ready(**{**base, **fields})


def test_control_messages_parse_into_their_types() -> None:
    sent = ready(frame_size_px=512, blendshape_names=("a", "b"), blendshape_order="livelinkface", forward={"vmc": "x"})
    assert p.parse_server_message(sent.to_json()) == sent
    stopped = p.ForwardStopped("vts", "default", "VTube Studio closed the connection")
    assert json.loads(stopped.to_json()) == {
        "type": "forward_stopped",
        "kind": "vts",
        "destination": "default",
        "message": "VTube Studio closed the connection",
    }
    assert p.parse_server_message(stopped.to_json()) == stopped
    assert p.parse_server_message(p.End(frames=2, audio_samples=16000).to_json()) == p.End(2, 16000)
    error = p.ProtocolError("server_full", "server is full", 1013)
    assert p.parse_server_message(error.to_json()) == p.ErrorMessage("server_full", "server is full")


def test_server_messages_with_unknown_keys_still_parse() -> None:
    body = json.loads(ready().to_json())
    body["new_field"] = [1, 2]
    assert p.parse_server_message(json.dumps(body)) == ready()
    del body["forward"]  # a server from before forwarding
    assert p.parse_server_message(json.dumps(body)) == ready()


def test_forward_errors_say_whether_to_retry() -> None:
    refused, unavailable = p.forward_refused("no such destination"), p.forward_unavailable("in use")
    assert (refused.code, refused.close_code) == ("forward_refused", 1008)
    assert (unavailable.code, unavailable.close_code) == ("forward_unavailable", 1013)


def test_close_reasons_fit_a_close_frame() -> None:
    assert p.close_reason("short") == "short"
    long = p.close_reason("é" * 100)
    assert len(long.encode("utf-8")) <= 123 and long.endswith("...")
    error = p.ProtocolError("x", "y" * 500)
    assert len(error.close_reason.encode()) <= 123
    assert json.loads(error.to_json()) == {"type": "error", "code": "x", "message": "y" * 500}


def test_the_codec_does_no_io_and_needs_no_engine() -> None:
    for source in Path(p.__file__).parent.glob("*.py"):
        text = source.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(import|from)\s+(asyncio|aiohttp|websockets|socket|engine)\b", text, re.M), source
