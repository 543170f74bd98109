"""Engine names, profiles and build settings: everything about TensorRT engines that needs no GPU."""

import importlib.util
from pathlib import Path

import pytest

from engine.backends.tensorrt_build import (
    CAUSE_SPEC,
    ENGINE_FORMAT_VERSION,
    GENERATOR_SPEC,
    TENSORRT_REQUIREMENT,
    EngineSpec,
    TensorRTUnavailable,
    build_engine,
    engine_file_name,
    file_sha256,
    profile_shapes,
    timing_cache_file_name,
)

SHA = "0123456789abcdef" + "f" * 48


def test_engine_name_encodes_gpu_tensorrt_onnx_and_settings() -> None:
    h100 = dict(gpu_name="NVIDIA H100 80GB HBM3", tensorrt_version="11.4.0.106", onnx_sha256=SHA)
    name = engine_file_name(GENERATOR_SPEC, **h100)
    assert name == (
        f"generator-f16-b1-8-64-NVIDIA-H100-80GB-HBM3-trt11.4.0.106-0123456789abcdef-v{ENGINE_FORMAT_VERSION}.engine"
    )
    cause = engine_file_name(CAUSE_SPEC, **h100)
    assert cause.startswith("cause-f32-b1-1-64-h1-2-16-")


def test_any_difference_gives_another_engine_name() -> None:
    base = dict(gpu_name="NVIDIA L4", tensorrt_version="10.13.3.9", onnx_sha256=SHA)
    names = {
        engine_file_name(GENERATOR_SPEC, **base),
        engine_file_name(GENERATOR_SPEC, **{**base, "gpu_name": "NVIDIA A10G"}),
        engine_file_name(GENERATOR_SPEC, **{**base, "tensorrt_version": "11.4.0.106"}),
        engine_file_name(GENERATOR_SPEC, **{**base, "onnx_sha256": "1" * 64}),
        engine_file_name(EngineSpec(network="generator", precision="f32", batch=(1, 8, 64)), **base),
        engine_file_name(EngineSpec(network="generator", precision="f16", batch=(1, 4, 64)), **base),
    }
    assert len(names) == 6


def test_names_are_safe_file_names() -> None:
    name = engine_file_name(
        GENERATOR_SPEC, gpu_name="NVIDIA GeForce RTX 4090 D/PCIe", tensorrt_version="11.4", onnx_sha256=SHA
    )
    assert "/" not in name and " " not in name and "GeForce-RTX-4090-D-PCIe" in name
    cache = timing_cache_file_name(gpu_name="NVIDIA L4", tensorrt_version="11.4.0.106")
    assert cache == "timing-NVIDIA-L4-trt11.4.0.106.cache"


def test_profiles_fill_the_batch_and_hops_axes() -> None:
    generator = profile_shapes({"images": (-1, 3, 128, 128), "aus": (-1, 17)}, GENERATOR_SPEC)
    assert generator == {
        "images": ((1, 3, 128, 128), (8, 3, 128, 128), (64, 3, 128, 128)),
        "aus": ((1, 17), (8, 17), (64, 17)),
    }
    cause = profile_shapes({"mel": (-1, -1, 80), "state_3": (-1, 16, 80)}, CAUSE_SPEC)
    assert cause == {
        "mel": ((1, 1, 80), (1, 2, 80), (64, 16, 80)),
        "state_3": ((1, 16, 80), (1, 16, 80), (64, 16, 80)),
    }


def test_unexpected_dynamic_axes_are_refused() -> None:
    with pytest.raises(ValueError, match="dynamic axis 1"):
        profile_shapes({"images": (-1, -1, 128, 128)}, GENERATOR_SPEC)
    with pytest.raises(ValueError, match="dynamic axis 2"):
        profile_shapes({"mel": (-1, -1, -1)}, CAUSE_SPEC)


def test_specs_are_validated() -> None:
    with pytest.raises(ValueError, match="min <= opt <= max"):
        EngineSpec(network="generator", precision="f16", batch=(8, 1, 64))
    with pytest.raises(ValueError, match="hops"):
        EngineSpec(network="generator", precision="f16", batch=(1, 8, 64), hops=(1, 2, 16))
    with pytest.raises(ValueError, match="hops"):
        EngineSpec(network="cause", precision="f32", batch=(1, 1, 64))
    assert CAUSE_SPEC.describe() == "cause f32, batch 1..64 (opt 1), hops 1..16 (opt 2)"


def test_file_sha256(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"abc")
    assert file_sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="tensorrt is installed here")
def test_building_without_tensorrt_says_what_to_install(tmp_path: Path) -> None:
    onnx_path = tmp_path / "generator.onnx"
    onnx_path.write_bytes(b"not needed: the check comes first")
    with pytest.raises(TensorRTUnavailable) as caught:
        build_engine(onnx_path, GENERATOR_SPEC, tmp_path / "x.engine")
    assert str(caught.value).startswith(TENSORRT_REQUIREMENT)
    assert not (tmp_path / "x.engine").exists()
