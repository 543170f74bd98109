"""int8 by default where the weights have an int8 build: the default generator's ships with it (no NNCF needed)."""

import shutil
from pathlib import Path

import pytest

from engine.avatar import load_default_avatar
from engine.backends import create_backends
from engine.backends.base import BackendUnavailable
from engine.backends.model_files import ModelSource, onnx_file, resolve_source
from engine.backends.openvino_backend import OpenVinoGenerator, bf16_supported
from engine.backends.openvino_int8 import find_int8_ir, int8_ir_path
from engine.backends.selection import default_options, default_precision
from engine.cli.quantize import blended_faces, psnr_db, random_aus
from models.ganimation.io import save_generator
from tests.engine.nets import small_generator

FLOAT_PRECISION = "bf16" if bf16_supported() else "f32"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AVATAR_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_the_default_weights_are_served_in_int8_from_the_shipped_build(cache: Path) -> None:
    generator = resolve_source("generator", None)
    shipped = find_int8_ir(onnx_file(generator))
    assert shipped is not None and shipped.parent.name == "weights"  # found beside the weights, the cache is empty
    assert default_precision("openvino", generator) == "int8"
    assert default_options("openvino", generator=generator).describe().startswith("generator int8")
    assert default_options("openvino").precision == FLOAT_PRECISION  # weights unknown: no guess

    generator_runtime, _ = create_backends(
        "openvino", generator, ModelSource("cause", None), default_options("openvino", generator=generator)
    )
    reference = OpenVinoGenerator(onnx_file(generator), threads=1, precision="f32")
    crop, aus = load_default_avatar().crop, random_aus(8, seed=3)
    # The face a viewer sees, int8 against float: the quantization's own bar (avatar quantize refuses < 40 dB).
    assert psnr_db(blended_faces(generator_runtime, crop, aus), blended_faces(reference, crop, aus)) >= 40.0


def test_other_weights_stay_float_until_quantized_and_nothing_is_exported_to_decide(
    cache: Path, tmp_path: Path
) -> None:
    net = small_generator(width=8)
    checkpoint = tmp_path / "generator.pth"
    save_generator(net, net.config, checkpoint)
    source = ModelSource("generator", checkpoint)
    assert default_precision("openvino", source) == FLOAT_PRECISION
    assert not cache.exists() or not any(cache.iterdir())  # deciding exported no ONNX file

    # Once an int8 build of exactly these weights is in the cache (as avatar quantize leaves it), it is the default.
    onnx = onnx_file(source)
    shipped = find_int8_ir(onnx_file(resolve_source("generator", None)))
    assert shipped is not None
    built = int8_ir_path(onnx)
    shutil.copy(shipped, built)
    shutil.copy(shipped.with_suffix(".bin"), built.with_suffix(".bin"))
    assert find_int8_ir(onnx) == built
    assert default_precision("openvino", source) == "int8"
    assert default_precision("onnxruntime", source) == "f32"  # only OpenVINO runs the int8 build


def test_a_missing_int8_build_names_the_command_that_makes_it(cache: Path, tmp_path: Path) -> None:
    net = small_generator(width=8)
    checkpoint = tmp_path / "generator.pth"
    save_generator(net, net.config, checkpoint)
    options = default_options("openvino", precision="int8")
    with pytest.raises(BackendUnavailable, match=r"avatar quantize --generator"):
        create_backends("openvino", ModelSource("generator", checkpoint), ModelSource("cause", None), options)
