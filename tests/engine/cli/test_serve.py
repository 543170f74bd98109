"""``avatar serve``: flags map one to one onto ServerConfig; bad values fail before anything loads."""

from pathlib import Path

import pytest

from engine.au.liveness import LivenessSettings
from engine.backends import BackendOptions, create_backends
from engine.backends.model_files import ModelSource
from engine.backends.openvino_backend import bf16_supported
from engine.backends.selection import usable_cores
from engine.cli.main import build_parser
from engine.cli.serve import browser_url, config_from_args
from engine.server.config import ServerConfig


def test_flags_map_onto_the_server_config() -> None:
    args = build_parser().parse_args(
        "serve --host 0.0.0.0 --port 0 --fps 30 --size 256 --max-sessions 3 --avatar me.png "
        "--face-box 1,2,3,4 --backend onnxruntime --threads 1 --generator g.onnx --cause c.onnx "
        "--renderer warp --framing head".split()
    )
    config = config_from_args(args)
    assert config == ServerConfig(
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
    assert config.precision == ("bf16" if bf16_supported() else "f32")
    config = config_from_args(build_parser().parse_args("serve --backend openvino --threads 2 --streams 3".split()))
    assert (config.threads, config.streams) == (2, 3)


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
