"""The host build: cached by content, clear errors, and C structs laid out as kernels.items packs them."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from kernels import host_build
from kernels.host_build import HostBuildError, HostOps, build_host_library, cache_dir
from kernels.items import STRUCTS


@pytest.fixture
def source_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the kernel sources that the build reads instead of kernels/."""
    if host_build.find_compiler() is None:
        pytest.skip("no C++ compiler")
    copy = tmp_path / "kernels"
    copy.mkdir()
    for path in host_build.kernel_sources():
        shutil.copy(path, copy / path.name)
    monkeypatch.setattr(host_build, "KERNELS_DIR", copy)
    return copy


def test_library_is_cached_and_rebuilt_when_a_source_changes(source_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "cache"
    first = build_host_library(directory=out)
    built_at = first.stat().st_mtime_ns
    assert build_host_library(directory=out) == first and first.stat().st_mtime_ns == built_at
    with (source_copy / "image_ops.cuh").open("a") as header:
        header.write("\n// changed\n")
    second = build_host_library(directory=out)
    assert second != first and second.is_file()
    assert sorted(p.name for p in out.iterdir()) == sorted([first.name, second.name])  # no leftovers


def test_compiler_errors_are_reported(source_copy: Path, tmp_path: Path) -> None:
    with (source_copy / "host_ops.cpp").open("a") as source:
        source.write("\nthis is not C++;\n")
    with pytest.raises(HostBuildError, match="host_ops.cpp.*error"):
        build_host_library(directory=tmp_path / "cache")


def test_missing_compiler_is_reported(tmp_path: Path) -> None:
    with pytest.raises(HostBuildError, match="cannot run the C\\+\\+ compiler"):
        build_host_library(compiler=str(tmp_path / "no-such-g++"), directory=tmp_path)


def test_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AVATAR_CACHE_DIR", str(tmp_path / "avatar"))
    assert cache_dir() == tmp_path / "avatar" / "kernels"
    monkeypatch.delenv("AVATAR_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "avatar-engine" / "kernels"


@pytest.mark.parametrize("struct", sorted(STRUCTS))
def test_c_structs_match_the_packed_dtypes(host_ops: HostOps, struct: str) -> None:
    dtype = STRUCTS[struct]
    assert host_ops.layout(struct) == dtype.itemsize
    for field, (_, offset, *_) in dtype.fields.items():  # type: ignore[union-attr]
        assert host_ops.layout(struct, field) == offset, f"{struct}.{field}"


def test_f16_conversion_rounds_as_numpy(host_ops: HostOps) -> None:
    """Every float16 midpoint (the ties) and its float32 neighbours, plus a sweep of all float32s."""
    halves = np.arange(0x7C00, dtype=np.uint16).view(np.float16).astype(np.float64)  # 0 .. max finite
    ties = ((halves[:-1] + halves[1:]) / 2).astype(np.float32)  # exact in float32
    near = np.concatenate([ties, np.nextafter(ties, np.float32(0)), np.nextafter(ties, np.float32(np.inf))])
    sweep = np.arange(0, 1 << 32, 4099, dtype=np.uint64).astype(np.uint32).view(np.float32)
    edges = np.float32([65504, 65519.99, 65520, np.inf])  # largest half, just below and at inf
    values = np.concatenate([near, -near, sweep[~np.isnan(sweep)], edges])
    with np.errstate(over="ignore"):  # numpy warns where it rounds to inf, as it should
        want = values.astype(np.float16)
    np.testing.assert_array_equal(host_ops.f32_to_f16(values).view(np.uint16), want.view(np.uint16))
    assert np.isnan(host_ops.f32_to_f16(np.float32([np.nan]))).all()
