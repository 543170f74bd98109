"""Implementations of the image kernels the tests run against the numpy reference.

``ops`` is the host build, the launcher over an emulated grid (both on the
CPU, given a C++ compiler) and, marked ``gpu``, the launcher on a CUDA GPU.
The GPU one skips when cuda.core or a CUDA device is missing, unless
AVATAR_REQUIRE_GPU=1 (scripts/run_gpu_tests.sh): then it fails.
"""

import os
from typing import Any

import pytest

from kernels.host_build import HostBuildError, HostOps, load_host_ops
from kernels.launch import import_cuda_core


@pytest.fixture(scope="session")
def host_ops() -> HostOps:
    try:
        return load_host_ops()
    except HostBuildError as exc:
        if "no C++ compiler" in str(exc):
            pytest.skip(f"host build of the kernels: {exc}")
        raise


def gpu_unavailable() -> str | None:
    """Why the CUDA kernels cannot run here, or None if they can."""
    try:
        core = import_cuda_core()
    except ImportError as exc:
        return str(exc)
    try:
        devices = core.Device.get_all_devices()
    except Exception as exc:  # cuda.pathfinder / driver errors: no driver on this machine
        return f"no CUDA driver: {type(exc).__name__}: {exc}"
    return None if devices else "no CUDA device"


@pytest.fixture(scope="session")
def gpu_ops() -> Any:
    reason = gpu_unavailable()
    if reason is not None:
        if os.environ.get("AVATAR_REQUIRE_GPU") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    from tests.kernels.gpu_ops import GpuOps

    return GpuOps()


@pytest.fixture(scope="session")
def emulated_ops(host_ops: HostOps) -> Any:
    from tests.kernels import fake_cuda_core
    from tests.kernels.gpu_ops import GpuOps

    return GpuOps(fake_cuda_core)


@pytest.fixture(params=["host", "emulated", pytest.param("gpu", marks=pytest.mark.gpu)])
def ops(request: pytest.FixtureRequest) -> Any:
    """One implementation of the kernels; all give the same numbers.

    host: the per-pixel functions in plain loops (host_ops.cpp). emulated: the
    launcher and the real kernel bodies over its grids, on the CPU
    (fake_cuda_core.py). gpu: the launcher on a CUDA GPU.
    """
    return request.getfixturevalue(f"{request.param}_ops")
