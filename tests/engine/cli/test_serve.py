"""``avatar serve``: flags map one to one onto ServerConfig; bad values fail before anything loads."""

import dataclasses
from pathlib import Path

import pytest

from engine.au.liveness import LivenessSettings
from engine.backends import BackendOptions, create_backends
from engine.backends.model_files import ModelSource
from engine.backends.selection import usable_cores
from engine.cli.main import build_parser
from engine.cli.serve import browser_url, config_from_args
from engine.errors import UsageError
from engine.server.config import ServerConfig


def test_flags_map_onto_the_server_config() -> None:
    args = build_parser().parse_args(
        "serve --host 0.0.0.0 --port 0 --fps 30 --size 256 --max-sessions 3 --avatar me.png "
        "--face-box 1,2,3,4 --backend onnxruntime --threads 1 --generator g.onnx --cause c.onnx "
        "--renderer warp --framing head".split()
    )
    config = config_from_args(args)
    assert config.access_token is not None and len(config.access_token) >= 32  # 0.0.0.0: a token is made
    assert dataclasses.replace(config, access_token=None) == ServerConfig(
        host="0.0.0.0",
        port=0,
        fps=30,
        output_size_px=256,
        max_sessions=3,
        avatar_path=Path("me.png"),
        face_box="1,2,3,4",
        backend="onnxruntime",
        precision="f32",
        threads=1,
        streams=1,
        generator_path=Path("g.onnx"),
        cause_path=Path("c.onnx"),
        renderer="warp",
        framing="head",
    )


def test_avatar_app_flags_name_the_destinations_sessions_may_pick() -> None:
    args = build_parser().parse_args(
        "serve --vmc --vmc stage=10.0.0.7:4000 --vmc-shapes arkit "
        "--livelink 192.168.1.5 --livelink-subject Host".split()
    )
    forwarding = config_from_args(args).forwarding
    assert forwarding.destinations.names() == {"vmc": ["default", "stage"], "livelink": ["default"]}
    assert forwarding.destinations.describe() == (
        "vmc default (127.0.0.1:39539), stage (10.0.0.7:4000); livelink default (192.168.1.5:11111)"
    )
    assert (forwarding.vmc_shapes, forwarding.livelink_subject) == ("arkit", "Host")


def test_defaults_are_the_server_config_defaults() -> None:
    config = config_from_args(build_parser().parse_args(["serve", "--backend", "openvino"]))
    defaults = ServerConfig()
    assert (config.host, config.port, config.fps, config.output_size_px, config.max_sessions, config.liveness) == (
        defaults.host,
        defaults.port,
        defaults.fps,
        defaults.output_size_px,
        defaults.max_sessions,
        defaults.liveness,
    )
    assert (config.renderer, config.framing) == (defaults.renderer, defaults.framing) == ("auto", "portrait")
    assert config.liveness == LivenessSettings()


def test_liveness_flags_map_onto_the_settings() -> None:
    args = build_parser().parse_args(
        "serve --backend openvino --no-blink --blink-rate 22 --no-smoothing --head-motion-scale 0.5 --no-idle "
        "--liveness-seed 3".split()
    )
    assert config_from_args(args).liveness == LivenessSettings(
        blink=False, blink_rate_per_min=22.0, smoothing=False, head_motion_scale=0.5, idle=False, seed=3
    )
    still = build_parser().parse_args("serve --backend openvino --still".split())
    assert config_from_args(still).liveness == LivenessSettings.off()
    render = build_parser().parse_args("render --no-head-motion".split())
    assert render.head_motion is False and render.blink is True


def test_openvino_serves_with_one_single_threaded_run_per_core_by_default() -> None:
    config = config_from_args(build_parser().parse_args(["serve", "--backend", "openvino"]))
    assert config.threads == 1 and config.streams == usable_cores()
    assert config.precision == "int8"  # the default weights ship their int8 build
    asked = config_from_args(build_parser().parse_args("serve --backend openvino --precision f32".split()))
    assert asked.precision == "f32"
    config = config_from_args(build_parser().parse_args("serve --backend openvino --threads 2 --streams 3".split()))
    assert (config.threads, config.streams) == (2, 3)


def test_the_session_limit_defaults_to_what_the_cpu_holds() -> None:
    cpu = config_from_args(build_parser().parse_args("serve --backend openvino".split()))
    assert cpu.max_sessions == max(1, usable_cores() // 2)  # one session per 2 cores (bench throughput, peers)
    assert config_from_args(build_parser().parse_args("serve --backend tensorrt".split())).max_sessions == 4
    asked = config_from_args(build_parser().parse_args("serve --backend openvino --max-sessions 6".split()))
    assert asked.max_sessions == 6
    with pytest.raises(UsageError, match="--max-sessions must be at least 1"):
        config_from_args(build_parser().parse_args("serve --max-sessions 0".split()))


def test_streams_need_openvino_and_are_refused_before_anything_loads() -> None:
    with pytest.raises(ValueError, match="--streams > 1 needs --backend openvino"):
        config_from_args(build_parser().parse_args("serve --backend onnxruntime --streams 2".split()))
    with pytest.raises(ValueError, match="--streams > 1 needs --backend openvino"):
        create_backends("torch", ModelSource("generator", None), ModelSource("cause", None), BackendOptions(streams=2))


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        ("--fps 0", "--fps"),
        ("--size 255", "--size"),
        ("--max-sessions 0", "--max-sessions"),
        ("--port 70000", "--port"),
        ("--threads 0", "--threads"),
        ("--streams 0", "--streams"),
        ("--blink-rate 50", "--blink-rate"),
        ("--head-motion-scale -1", "--head-motion-scale"),
        ("--vmc 127.0.0.1:port", "is not a number"),
    ],
)
def test_bad_values_are_refused(flags: str, words: str) -> None:
    args = build_parser().parse_args(["serve", "--backend", "openvino", *flags.split()])
    with pytest.raises(ValueError, match=words):
        config_from_args(args)


def test_browser_url() -> None:
    assert browser_url("0.0.0.0", 8080) == "http://localhost:8080/"
    assert browser_url("192.168.1.5", 80) == "http://192.168.1.5:80/"
    assert browser_url("fe80::1", 8080) == "http://[fe80::1]:8080/"


def test_a_non_loopback_address_gets_a_token_unless_auth_is_off(tmp_path: Path) -> None:
    """Issue 13, failure 3: --host 0.0.0.0 had no authentication and printed no warning."""
    from engine.cli.serve import auth_warning

    open_config = config_from_args(build_parser().parse_args("serve --backend openvino --host 0.0.0.0".split()))
    assert open_config.access_token and auth_warning(open_config) is None
    loopback = config_from_args(build_parser().parse_args("serve --backend openvino".split()))
    assert loopback.access_token is None
    off = config_from_args(build_parser().parse_args("serve --backend openvino --host 0.0.0.0 --auth off".split()))
    assert off.access_token is None
    assert "AUTHENTICATION IS OFF" in (auth_warning(off) or "")
    token_file = tmp_path / "token"
    token_file.write_text("a-token-from-a-file-0123456789\n")
    given = config_from_args(
        build_parser().parse_args(["serve", "--backend", "openvino", "--token-file", str(token_file)])
    )
    assert given.access_token == "a-token-from-a-file-0123456789"


def test_access_tls_ice_and_limit_flags_map_onto_the_config(tmp_path: Path) -> None:
    secret = tmp_path / "turn"
    secret.write_text("turn-password")
    args = build_parser().parse_args(
        [
            "serve", "--backend", "openvino", "--allow-origin", "https://app.example", "--server-name", "avatar.lan",
            "--self-signed", "--ice-server", "stun:stun.example:3478", "--ice-server", "turn:turn.example:3478",
            "--turn-username", "me", "--turn-credential-file", str(secret), "--write-timeout", "2",
            "--max-audio-speed", "3", "--drain-timeout", "1.5", "--max-connections", "100",
        ]
    )  # fmt: skip
    config = config_from_args(args)
    assert config.allowed_origins == ("https://app.example",) and config.server_names == ("avatar.lan",)
    assert config.self_signed and config.tls
    assert [s.to_json() for s in config.ice_servers] == [
        {"urls": ["stun:stun.example:3478"]},
        {"urls": ["turn:turn.example:3478"], "username": "me", "credential": "turn-password"},
    ]
    assert (config.write_timeout_s, config.max_audio_speed, config.drain_timeout_s) == (2.0, 3.0, 1.5)
    assert config.max_connections == 100


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        ("--tls-cert c.pem", "go together"),
        ("--ice-server http://x", "stun:"),
        ("--ice-server turn:x:3478", "--turn-username"),
        ("--write-timeout 0", "--write-timeout"),
        ("--token-file /nonexistent/token", "cannot read"),
    ],
)
def test_bad_access_and_limit_flags_are_refused(flags: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        config_from_args(build_parser().parse_args(["serve", "--backend", "openvino", *flags.split()]))


def test_browser_url_with_tls_and_a_token() -> None:
    assert browser_url("127.0.0.1", 8443, tls=True, token="abc") == "https://localhost:8443/#token=abc"
    assert browser_url("192.168.1.5", 8443, tls=True) == "https://192.168.1.5:8443/"
