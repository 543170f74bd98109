"""``--backend auto``: the CPU default here with its reason, TensorRT where a GPU and the gpu extra are."""

import os
from pathlib import Path

import pytest

from engine.backends import BackendOptions, selection
from engine.backends.model_files import resolve_source
from engine.backends.openvino_backend import bf16_supported
from engine.backends.registry import BACKENDS, DEFAULT_BACKEND, create_backends
from engine.backends.selection import (
    BackendChoice,
    default_max_batch,
    default_options,
    default_precision,
    select_backend,
    tensorrt_unavailable_reason,
    usable_cores,
)

no_gpu_here = pytest.mark.skipif(bool(selection.cuda_gpu_names()), reason="this machine has a CUDA GPU")


@no_gpu_here
def test_auto_picks_the_cpu_default_here_and_says_why() -> None:
    choice = select_backend("auto")
    assert choice == BackendChoice(DEFAULT_BACKEND, "no CUDA GPU found: tensorrt needs one")
    assert choice.describe() == f"backend: {DEFAULT_BACKEND} (no CUDA GPU found: tensorrt needs one)"
    assert tensorrt_unavailable_reason() == "no CUDA GPU found: tensorrt needs one"


def test_a_gpu_without_the_gpu_extra_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selection, "cuda_gpu_names", lambda: ["NVIDIA L4"])
    monkeypatch.setattr(selection, "_importable", lambda module: module != "tensorrt")
    choice = select_backend("auto")
    assert choice.name == DEFAULT_BACKEND
    assert choice.reason == "CUDA GPU NVIDIA L4 found, but tensorrt not installed: pip install 'avatar-engine[gpu]'"


def test_a_gpu_with_the_gpu_extra_gets_tensorrt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selection, "cuda_gpu_names", lambda: ["NVIDIA L4"])
    monkeypatch.setattr(selection, "_importable", lambda module: True)
    assert select_backend("auto") == BackendChoice("tensorrt", "CUDA GPU NVIDIA L4 and TensorRT found")
    assert tensorrt_unavailable_reason() is None


def test_named_backends_pass_through_and_unknown_ones_are_explained() -> None:
    assert select_backend("onnxruntime") == BackendChoice("onnxruntime", "asked for with --backend")
    with pytest.raises(ValueError, match="choose one of: auto, torch, onnxruntime, openvino, tensorrt"):
        select_backend("tensorflow")


def test_precision_defaults() -> None:
    assert default_precision("tensorrt") == "f16"
    assert default_precision("openvino") == ("bf16" if bf16_supported() else "f32")
    assert default_precision("torch") == "f32" and default_precision("onnxruntime") == "f32"


def test_each_runtime_is_described_once_and_refuses_what_it_cannot_do_before_loading() -> None:
    assert [name for name, spec in BACKENDS.items() if spec.parallel_runs] == ["openvino"]
    assert default_max_batch("tensorrt") == 8 and default_max_batch("openvino") == 1
    generator, cause = resolve_source("generator", None), resolve_source("cause", None)
    with pytest.raises(ValueError, match=r"in f32, not bf16; bf16 needs --backend openvino"):
        create_backends("onnxruntime", generator, cause, BackendOptions(precision="bf16"))
    with pytest.raises(ValueError, match=r"in f32, bf16 or int8, not f16; f16 needs --backend tensorrt"):
        create_backends("openvino", generator, cause, BackendOptions(precision="f16"))
    with pytest.raises(ValueError, match=r"--streams > 1 needs --backend openvino"):
        create_backends("torch", generator, cause, BackendOptions(streams=2))


def test_runtime_defaults_keep_every_core_busy() -> None:
    cores = usable_cores()
    assert default_options("openvino", precision="f32") == BackendOptions(threads=1, streams=cores, precision="f32")
    assert default_options("openvino", threads=2).streams == max(1, cores // 2)
    assert default_options("onnxruntime") == BackendOptions(threads=cores, streams=1, precision="f32")
    # avatar render asks for one frame at a time: every core on that frame
    assert default_options("openvino", precision="f32", serving=False) == BackendOptions(
        threads=cores, streams=1, precision="f32"
    )
    assert (
        BackendOptions(threads=1, streams=2, precision="bf16").describe() == "generator bf16, 2 runs at once x 1 thread"
    )


@pytest.mark.parametrize(("cpu_max", "cores"), [("100000 100000", 1), ("150000 100000", 1), ("max 100000", None)])
def test_usable_cores_respects_a_container_cpu_quota(tmp_path: Path, monkeypatch, cpu_max: str, cores) -> None:
    quota = tmp_path / "cpu.max"
    quota.write_text(cpu_max + "\n")
    monkeypatch.setattr(selection, "_CGROUP_CPU_MAX", str(quota))
    assert usable_cores() == (cores or len(os.sched_getaffinity(0)))


@no_gpu_here
@pytest.mark.slow  # exports two small networks to ONNX (~7 s)
def test_cli_runs_the_cpu_default_and_prints_the_line(tmp_path: Path, capsys) -> None:
    from engine.backends.model_files import export_onnx
    from engine.cli.main import build_parser
    from engine.cli.options import build_backends
    from tests.engine.nets import small_cause, small_generator

    export_onnx(small_generator(width=8), "generator", tmp_path / "g.onnx")
    export_onnx(small_cause(), "cause", tmp_path / "c.onnx")
    weights = ["--generator", str(tmp_path / "g.onnx"), "--cause", str(tmp_path / "c.onnx")]
    args = build_parser().parse_args(["render", *weights])
    assert args.backend == "auto" and args.precision is None
    generator, au_step = build_backends(args)
    assert generator.name == DEFAULT_BACKEND and au_step.name == "onnxruntime"  # CAUSE's cheaper runtime
    assert f"backend: {DEFAULT_BACKEND} (no CUDA GPU found: tensorrt needs one)" in capsys.readouterr().err.splitlines()
