"""The TensorRT backend: importable and helpful without a GPU; on one, ONNX Runtime's numbers.

GPU tests are marked ``gpu`` and skip when TensorRT cannot run (checked when
they run, never at collection); with ``AVATAR_REQUIRE_GPU=1`` they fail instead,
so a GPU run cannot pass by skipping everything. Engines are built for small
networks and small profiles so the whole file takes a few minutes on a GPU.
"""

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from engine.backends import BackendOptions, create_backends
from engine.backends.base import BackendUnavailable
from engine.backends.model_files import ModelSource, export_onnx, resolve_source
from engine.backends.onnx_fp16 import to_float16
from engine.backends.onnxruntime_backend import OnnxRuntimeAUStep, OnnxRuntimeGenerator
from engine.backends.selection import tensorrt_unavailable_reason
from engine.backends.tensorrt_build import TENSORRT_REQUIREMENT, EngineSpec, build_engine, engine_file_name_for
from tests.engine.nets import random_mel, small_cause, small_generator

REPO = Path(__file__).resolve().parents[3]
needs_tensorrt_missing = pytest.mark.skipif(tensorrt_unavailable_reason() is None, reason="TensorRT can run here")


def test_importing_the_backend_touches_no_cuda() -> None:
    code = (
        "import sys, engine.backends, engine.backends.tensorrt_backend, engine.backends.tensorrt_runner; "
        "import engine.cli.main; "
        "print(sorted(m for m in sys.modules if m == 'tensorrt' or m.split('.')[0] == 'cuda'))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@needs_tensorrt_missing
def test_constructing_without_a_gpu_says_what_is_needed(tmp_path: Path) -> None:
    from engine.backends.tensorrt_backend import TensorRTAUStep, TensorRTGenerator

    with pytest.raises(BackendUnavailable, match=re.escape(TENSORRT_REQUIREMENT)):
        TensorRTGenerator(tmp_path / "generator.engine")
    with pytest.raises(BackendUnavailable, match=re.escape(TENSORRT_REQUIREMENT)):
        TensorRTAUStep(tmp_path / "cause.engine", lookahead_hops=2)


@needs_tensorrt_missing
def test_the_registry_refuses_before_exporting_anything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVATAR_CACHE_DIR", str(tmp_path / "cache"))
    untrained = ModelSource("generator", None), ModelSource("cause", None)
    with pytest.raises(BackendUnavailable) as caught:
        create_backends("tensorrt", *untrained, BackendOptions(precision="f16"))
    assert str(caught.value).startswith(TENSORRT_REQUIREMENT) and "pip install 'avatar-engine[gpu]'" in str(
        caught.value
    )
    assert not (tmp_path / "cache").exists()  # no ONNX export was started


def test_precisions_tensorrt_cannot_run_are_refused() -> None:
    untrained = ModelSource("generator", None), ModelSource("cause", None)
    with pytest.raises(ValueError, match="f16 or f32, not bf16"):
        create_backends("tensorrt", *untrained, BackendOptions(precision="bf16"))


# ---------------------------------------------------------------- on a GPU

SMALL_GENERATOR = EngineSpec(network="generator", precision="f32", batch=(1, 4, 8))
SMALL_CAUSE = EngineSpec(network="cause", precision="f32", batch=(1, 1, 4), hops=(1, 2, 16))


@pytest.fixture(scope="module")
def gpu() -> None:
    reason = tensorrt_unavailable_reason()
    if reason is not None:
        if os.environ.get("AVATAR_REQUIRE_GPU") == "1":
            pytest.fail(f"AVATAR_REQUIRE_GPU=1 but {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def built(gpu: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small networks as ONNX, and f32 / f16 generator and f32 CAUSE engines with small profiles."""
    folder = tmp_path_factory.mktemp("tensorrt")
    export_onnx(small_generator(width=8), "generator", folder / "generator.onnx")
    export_onnx(small_cause(lookahead_hops=2), "cause", folder / "cause_step.onnx")
    paths = {"generator.onnx": folder / "generator.onnx", "cause.onnx": folder / "cause_step.onnx"}
    for key, onnx_path, spec in (
        ("generator-f32", paths["generator.onnx"], SMALL_GENERATOR),
        ("generator-f16", paths["generator.onnx"], dataclasses.replace(SMALL_GENERATOR, precision="f16")),
        ("cause-f32", paths["cause.onnx"], SMALL_CAUSE),
    ):
        paths[key] = build_engine(onnx_path, spec, folder / engine_file_name_for(onnx_path, spec))
    return paths


def generator_inputs(batch: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (
        rng.uniform(-1, 1, (batch, 3, 128, 128)).astype(np.float32),
        rng.uniform(0, 5, (batch, 17)).astype(np.float32),
    )


@pytest.mark.gpu
@pytest.mark.parametrize("batch", [1, 3, 8])
def test_f32_generator_engine_matches_onnxruntime(built: dict[str, Path], batch: int) -> None:
    from engine.backends.tensorrt_backend import TensorRTGenerator

    engine = TensorRTGenerator(built["generator-f32"])
    images, aus = generator_inputs(batch, seed=batch)
    want = OnnxRuntimeGenerator(built["generator.onnx"], threads=2).run(images, aus)
    got = engine.run(images, aus)
    for g, w in zip(got, want):
        assert g.dtype == np.float32 and g.shape == w.shape
        np.testing.assert_allclose(g, w, atol=1e-4)  # TF32 is off in f32 engines
    engine.close()


@pytest.mark.gpu
def test_f16_generator_engine_stays_within_float16_error(built: dict[str, Path]) -> None:
    """The error of TensorRT's FP16 engine against float32 is held to a multiple of a naive FP16 baseline's.

    The baseline is ONNX Runtime on the CPU running the very graph the engine
    was built from (``to_float16``): float16 storage between ops, so its error
    is what float16 itself costs this network. TensorRT fuses ops and may
    accumulate in float16 inside convolutions, so it is allowed 10 times that,
    plus 1e-3 (about two float16 steps at 0.5) for outputs the baseline
    happens to get exactly right.
    """
    from engine.backends.tensorrt_backend import TensorRTGenerator

    images, aus = generator_inputs(6, seed=7)
    feed = {"images": images, "aus": aus / 5}
    reference = ort.InferenceSession(str(built["generator.onnx"]), providers=["CPUExecutionProvider"]).run(None, feed)
    half_graph = to_float16(onnx.load(str(built["generator.onnx"]))).SerializeToString()
    baseline = ort.InferenceSession(half_graph, providers=["CPUExecutionProvider"]).run(None, feed)
    engine = TensorRTGenerator(built["generator-f16"])
    got = engine.run(images, aus)
    for name, g, b, r in zip(("color", "mask"), got, baseline, reference):
        engine_error, baseline_error = np.abs(g - r), np.abs(b - r)
        assert engine_error.max() <= 10 * baseline_error.max() + 1e-3, name
        assert engine_error.mean() <= 10 * baseline_error.mean() + 1e-4, name
    engine.close()


@pytest.mark.gpu
def test_cuda_graphs_replay_new_inputs_at_every_shape(built: dict[str, Path]) -> None:
    """Shapes seen twice get graphs; interleaving them with other shapes never mixes their state."""
    from engine.backends.tensorrt_backend import TensorRTGenerator

    engine = TensorRTGenerator(built["generator-f32"])
    reference = OnnxRuntimeGenerator(built["generator.onnx"], threads=2)
    for call, batch in enumerate([2, 2, 3, 2, 3, 3, 1, 2, 5, 3]):
        images, aus = generator_inputs(batch, seed=100 + call)  # new data every call
        for g, w in zip(engine.run(images, aus), reference.run(images, aus)):
            np.testing.assert_allclose(g, w, atol=1e-4, err_msg=f"call {call}, batch {batch}")
    assert engine.runner.graph_count == 2  # batches 2 and 3; 1 and 5 ran once
    engine.close()


@pytest.mark.gpu
def test_batches_beyond_the_profile_run_in_slices(built: dict[str, Path]) -> None:
    from engine.backends.tensorrt_backend import TensorRTGenerator

    engine = TensorRTGenerator(built["generator-f32"])
    images, aus = generator_inputs(11, seed=11)  # profile max is 8
    want = OnnxRuntimeGenerator(built["generator.onnx"], threads=2).run(images, aus)
    for g, w in zip(engine.run(images, aus), want):
        np.testing.assert_allclose(g, w, atol=1e-4)
    engine.close()


@pytest.mark.gpu
def test_outputs_left_on_the_device_compose_to_the_cpu_paths_frames(built: dict[str, Path]) -> None:
    """TensorRT's colour and attention never leave the GPU: the CUDA compositor makes the frames, bit for bit
    the ones the CPU compositor makes from the same outputs copied to the host (11 frames: two slices)."""
    from engine.avatar import load_default_avatar
    from engine.backends.tensorrt_backend import TensorRTGenerator
    from engine.pipeline.frames import AUFrame, FrameTrace, HeadPose
    from engine.pipeline.renderer import GanimationFaces, RenderRequest
    from kernels.device_compose import DeviceCompositor
    from kernels.launch import ImageKernels

    engine = TensorRTGenerator(built["generator-f32"])
    avatar = load_default_avatar()
    _, aus = generator_inputs(11, seed=5)
    requests = [
        RenderRequest(avatar, AUFrame(i, a, FrameTrace(0, 0, 0.0), head=HeadPose(roll_deg=i - 5.0)))
        for i, a in enumerate(aus)
    ]
    on_gpu = GanimationFaces(engine, compositor=DeviceCompositor(ImageKernels(0))).pictures(requests)
    on_cpu = GanimationFaces(engine).pictures(requests)
    for got, want in zip(on_gpu, on_cpu, strict=True):
        np.testing.assert_array_equal(got.rgb, want.rgb)
        for plane, expected in zip(got.i420, want.i420, strict=True):
            np.testing.assert_array_equal(plane, expected)
    engine.close()


@pytest.mark.gpu
def test_cause_engine_streams_like_onnxruntime(built: dict[str, Path]) -> None:
    """Chunks of 1 to 20 hops (beyond the profile's 16: split, state carried), batch 1 and 3."""
    from engine.backends.tensorrt_backend import TensorRTAUStep

    engine = TensorRTAUStep(built["cause-f32"], lookahead_hops=2)
    reference = OnnxRuntimeAUStep(built["cause.onnx"], threads=2)
    for batch in (1, 3):
        mel = np.stack([random_mel(50, seed=s) for s in range(batch)])
        got_state, want_state = engine.initial_state(batch), reference.initial_state(batch)
        start = 0
        for size in (1, 2, 2, 7, 16, 20, 2):
            chunk = mel[:, start : start + size]
            got, got_state = engine.step(chunk, got_state)
            want, want_state = reference.step(chunk, want_state)
            np.testing.assert_allclose(got, want, atol=1e-4, err_msg=f"batch {batch}, hops {start}..{start + size}")
            start += size
        for g, w in zip(got_state, want_state):
            np.testing.assert_allclose(g, w, atol=1e-4)
    engine.close()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("checkpoints")
    from models.cause.io import save_cause
    from models.ganimation.io import save_generator

    generator = small_generator(width=8)
    save_generator(generator, generator.config, folder / "gen.pth")
    save_cause(small_cause(lookahead_hops=2), folder / "cause.pt")
    return {"generator": folder / "gen.pth", "cause": folder / "cause.pt"}


@pytest.mark.gpu
@pytest.mark.slow  # full-profile engines: a minute or more on a GPU
def test_export_trt_then_backend_uses_the_exported_engines(
    gpu: None, checkpoints: dict[str, Path], tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.cli.main import main

    out = tmp_path / "deploy"
    args = [
        "export",
        "-o",
        str(out),
        "--trt",
        "--generator",
        str(checkpoints["generator"]),
        "--cause",
        str(checkpoints["cause"]),
    ]
    assert main(args) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    engines = manifest["tensorrt"]["engines"]
    assert engines["generator"]["precision"] == "f16" and engines["generator"]["batch"] == [1, 8, 64]
    assert engines["cause"]["hops"] == [1, 2, 16]
    assert (out / manifest["tensorrt"]["timing_cache"]).is_file()
    stamps = {kind: (out / entry["file"]).stat().st_mtime_ns for kind, entry in engines.items()}
    capsys.readouterr()
    assert main(args) == 0  # second run: cached engines, not rebuilt
    assert capsys.readouterr().err.count("cached TensorRT engine") == 2
    assert {kind: (out / entry["file"]).stat().st_mtime_ns for kind, entry in engines.items()} == stamps

    # the backend finds the engines beside the ONNX files: nothing is built into the cache
    monkeypatch.setenv("AVATAR_CACHE_DIR", str(tmp_path / "cache"))
    sources = resolve_source("generator", out / "generator.onnx"), resolve_source("cause", out / "cause_step.onnx")
    generator, au_step = create_backends("tensorrt", *sources, BackendOptions(precision="f16"))
    assert not (tmp_path / "cache").exists()
    assert au_step.lookahead_hops == 2
    images, aus = generator_inputs(2, seed=5)
    color, mask = generator.run(images, aus)
    assert color.shape == (2, 3, 128, 128) and mask.shape == (2, 1, 128, 128)
