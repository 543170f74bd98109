"""The launcher without a GPU: lazy imports, helpful errors, NVRTC compiles every kernel."""

import re
import subprocess
import sys

import pytest

from kernels import launch
from kernels.launch import KERNELS_DIR, PROGRAMS, compile_program, import_cuda_core

ARCHES = ("sm_80", "sm_90")


def test_import_touches_neither_cuda_core_nor_the_gpu() -> None:
    code = "import sys, kernels.launch; assert not [m for m in sys.modules if m.startswith('cuda')]"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_missing_cuda_core_says_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cuda.core", None)
    with pytest.raises(ImportError, match=re.escape("pip install 'avatar-engine[gpu]'")):
        import_cuda_core()
    with pytest.raises(ImportError, match=re.escape("pip install 'avatar-engine[gpu]'")):
        launch.ImageKernels()


def test_programs_name_every_kernel_of_every_source() -> None:
    sources = {path.name: path.read_text() for path in KERNELS_DIR.glob("*.cu")}
    declared = {name: tuple(re.findall(r'extern "C" __global__ void (\w+)\(', text)) for name, text in sources.items()}
    assert declared == PROGRAMS


@pytest.fixture(scope="module")
def nvrtc_core():
    """cuda.core with an NVRTC library to compile with (no GPU needed)."""
    core = pytest.importorskip("cuda.core", reason="cuda-python is not installed (the gpu extra)")
    pathfinder = pytest.importorskip("cuda.pathfinder")
    try:
        pathfinder.load_nvidia_dynamic_lib("nvrtc")
    except pathfinder.DynamicLibNotFoundError as exc:
        pytest.skip(f"no NVRTC library (pip install nvidia-cuda-nvrtc): {exc}")
    return core


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("source", sorted(PROGRAMS))
def test_nvrtc_compiles_with_the_launchers_options(nvrtc_core, source: str, arch: str) -> None:
    cubin = bytes(compile_program(nvrtc_core, source, arch).code)
    assert cubin.startswith(b"\x7fELF")
    for kernel in PROGRAMS[source]:
        assert kernel.encode() in cubin
