"""Every CUDA source compiles with nvcc for the GPUs we deploy on, and stays free of FMA contraction."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

KERNELS_DIR = Path(__file__).resolve().parents[2] / "kernels"
SOURCES = sorted(KERNELS_DIR.glob("*.cu"))

NVCC_FLAGS = (
    "-std=c++17",
    "--fmad=false",  # no contraction anywhere, as the reference (image_ops.cuh also uses __f*_rn)
    "-ftz=false",
    "-prec-div=true",
    "-Werror=all-warnings",
    "-gencode=arch=compute_80,code=sm_80",  # A100 cubin
    "-gencode=arch=compute_90,code=sm_90",  # H100 / H200 cubin
    "-gencode=arch=compute_90,code=compute_90",  # PTX, JIT-compiled by newer GPUs' drivers
)


def nvcc() -> str:
    path = shutil.which("nvcc")
    if path is None:
        pytest.skip("nvcc not found on PATH: the CUDA toolkit is not installed here (CI has it)")
    return path


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stderr}"
    return result


def test_sources_are_found() -> None:
    assert {s.name for s in SOURCES} == {"preprocess.cu", "postprocess.cu", "i420.cu"}


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.name)
def test_compiles_to_cubins_and_ptx(source: Path, tmp_path: Path) -> None:
    out = tmp_path / f"{source.stem}.fatbin"
    run([nvcc(), *NVCC_FLAGS, "--fatbin", str(source), "-o", str(out)])
    assert out.stat().st_size > 0


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.name)
def test_no_fma_even_with_nvcc_default_fmad(source: Path, tmp_path: Path) -> None:
    """The float arithmetic goes through __fmul_rn / __fadd_rn, so bit-exactness does not hang on --fmad."""
    out = tmp_path / f"{source.stem}.ptx"
    run([nvcc(), "-std=c++17", "-arch=compute_90", "-ptx", str(source), "-o", str(out)])
    assert not re.search(r"\b(fma|mad)\.\w*\.?f32", out.read_text())
