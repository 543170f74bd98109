"""The GPU scenario's post-processing, run over the CPU stand-in of cuda.core (and on a GPU where there is one)."""

from typing import Any

import numpy as np
import pytest

from bench.gpu import GpuPostprocess, sessions_within
from engine.avatar import load_avatar, prepare_avatar
from engine.avatar.face_box import FaceBox


@pytest.fixture(params=["emulated", pytest.param("gpu", marks=pytest.mark.gpu)])
def core(request: pytest.FixtureRequest) -> Any:
    """cuda.core's CPU stand-in (tests/kernels/fake_cuda_core.py), or the real one on a GPU."""
    if request.param == "gpu":
        from tests.kernels.conftest import gpu_unavailable

        reason = gpu_unavailable()
        if reason is not None:
            pytest.skip(reason)
        from kernels.launch import import_cuda_core

        return import_cuda_core()
    from kernels.host_build import HostBuildError, load_host_ops

    try:
        load_host_ops()  # the stand-in builds the kernel bodies with the host's C++ compiler
    except HostBuildError as exc:
        if "no C++ compiler" in str(exc):
            pytest.skip(f"host build of the kernels: {exc}")
        raise
    from tests.kernels import fake_cuda_core

    return fake_cuda_core


@pytest.mark.timeout(120)
def test_each_session_of_a_batch_gets_the_reference_frame(core: Any) -> None:
    small = load_avatar().portrait[::4, ::4]  # 128x128: the emulated grid runs kernel bodies on the CPU
    avatar = prepare_avatar(np.ascontiguousarray(small), face_box=FaceBox(40, 30, 50, 60))
    post = GpuPostprocess(avatar, 3, core=core)
    post.run(3)
    assert all(post.matches_reference(index) for index in range(3))


def test_sessions_per_gpu_is_the_largest_batch_whose_tick_fits_twice_in_a_frame() -> None:
    rows = [
        {"batch": 1, "generator_ms": 2.0, "postprocess_ms": 0.5},
        {"batch": 8, "generator_ms": 9.0, "postprocess_ms": 1.0},  # 2 x 10 ms <= 40 ms
        {"batch": 16, "generator_ms": 19.0, "postprocess_ms": 2.0},  # 2 x 21 ms > 40 ms
    ]
    assert sessions_within(rows, fps=25) == 8
    assert sessions_within(rows[2:], fps=25) == 0
