"""compose_frame: the compiled CPU kernel and the numpy reference give the same frames, head motion included."""

from pathlib import Path

import numpy as np
import pytest

from engine.avatar import load_default_avatar
from kernels import compose as compose_module
from kernels.compose import HOST_KERNELS_VARIABLE, ComposedFrame, compose_frame, host_kernels
from kernels.layers import FaceLayers


def _frames() -> list[ComposedFrame]:
    avatar = load_default_avatar()
    rng = np.random.default_rng(3)
    size = 128
    layers = FaceLayers(
        color=rng.uniform(-1, 1, (3, size, size)).astype(np.float32),
        mask=rng.uniform(0, 1, (1, size, size)).astype(np.float32),
    )
    poses = [None, (2.0, 1.5, 0.5), (-1.0, 3.0, -2.0)]
    motions = [None if pose is None else avatar.head_motion(*pose) for pose in poses]
    return [compose_frame(avatar.portrait, avatar.portrait_i420, avatar.crop_box, layers, m) for m in motions]


def test_the_compiled_kernel_composes_the_same_bytes_as_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    host_kernels.cache_clear()
    assert host_kernels() is not None, "g++ is on this machine: the compiled compositor must be used"
    compiled = _frames()
    monkeypatch.setenv(HOST_KERNELS_VARIABLE, "0")
    host_kernels.cache_clear()
    assert host_kernels() is None
    reference = _frames()
    host_kernels.cache_clear()
    for fast, slow in zip(compiled, reference, strict=True):
        assert np.array_equal(fast.rgb, slow.rgb)
        assert all(np.array_equal(a, b) for a, b in zip(fast.i420, slow.i420, strict=True))
    assert not np.array_equal(compiled[1].rgb, compiled[0].rgb)  # the head did move


def test_without_a_compiler_frames_still_come_from_numpy(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    monkeypatch.setenv("AVATAR_CACHE_DIR", str(tmp_path))  # no library built before
    host_kernels.cache_clear()
    with caplog.at_level("WARNING", logger=compose_module.__name__):
        assert host_kernels() is None
    assert "numpy" in caplog.text and "c++" in caplog.text.lower()
    assert len(_frames()) == 3
    host_kernels.cache_clear()
