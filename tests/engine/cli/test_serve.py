"""``avatar serve``: flags map one to one onto ServerConfig; bad values fail before anything loads."""

import dataclasses
from pathlib import Path

import pytest

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
        "--face-box 1,2,3,4 --backend onnxruntime --threads 1 --generator g.onnx --cause c.onnx".split()
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
    )


def test_defaults_are_the_server_config_defaults() -> None:
    config = config_from_args(build_parser().parse_args(["serve", "--backend", "openvino"]))
    defaults = ServerConfig()
    assert (config.host, config.port, config.fps, config.output_size_px, config.max_sessions) == (
        defaults.host,
        defaults.port,
        defaults.fps,
        defaults.output_size_px,
        defaults.max_sessions,
    )


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
