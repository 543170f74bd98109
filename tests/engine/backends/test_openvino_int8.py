"""The int8 generator: built once with NNCF, then served by OpenVINO alone from its IR."""

from pathlib import Path

import numpy as np
import pytest

from engine.audio import load_audio_file
from engine.audio.samples import SAMPLE_SPEECH
from engine.avatar import load_avatar
from engine.backends import BackendOptions, create_backends
from engine.backends.base import BackendUnavailable
from engine.backends.model_files import ModelSource, onnx_file
from engine.backends.openvino_backend import OpenVinoGenerator
from engine.backends.openvino_int8 import int8_ir_path
from engine.cli.quantize import blended_faces, build_int8_generator, psnr_db, random_aus
from models.ganimation.io import save_generator
from tests.engine.nets import small_generator

pytest.importorskip("nncf", reason="the quantize extra: pip install 'avatar-engine[quantize]'")


@pytest.fixture(scope="module")
def generator_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    net = small_generator(width=8)
    path = tmp_path_factory.mktemp("int8") / "generator.pth"
    save_generator(net, net.config, path)
    return path


@pytest.mark.slow
def test_int8_generator_is_built_once_and_served_without_nncf(generator_checkpoint: Path) -> None:
    source = ModelSource("generator", generator_checkpoint)
    options = BackendOptions(threads=1, precision="int8")
    with pytest.raises(BackendUnavailable, match=r"avatar quantize --generator"):
        create_backends("openvino", source, ModelSource("cause", None), options)

    onnx_path = onnx_file(source)
    crop = load_avatar(None).crop
    target, report = build_int8_generator(
        onnx_path, crop, load_audio_file(SAMPLE_SPEECH)[: 16_000 * 4], int8_ir_path(onnx_path)
    )
    assert target.is_file() and target.with_suffix(".bin").is_file()
    print(
        f"int8 vs {report['reference']}: {report['heldout_speech']['psnr_db']} dB held-out speech, "
        f"{report['random_aus']['psnr_db']} dB random AUs"
    )
    assert report["heldout_speech"]["frames"] > 0 and report["random_aus"]["frames"] > 0

    # The server's path finds the built IR for the same generator and runs it.
    generator, _ = create_backends("openvino", source, ModelSource("cause", None), options)
    aus = random_aus(4, seed=5)
    color, mask = generator.run(np.repeat(crop[None], 4, axis=0), aus)
    assert color.shape == (4, 3, 128, 128) and mask.shape == (4, 1, 128, 128)
    # Close to the float generator: the faces a viewer sees differ by a little.
    reference = OpenVinoGenerator(onnx_path, threads=1, precision="f32")
    assert psnr_db(blended_faces(generator, crop, aus), blended_faces(reference, crop, aus)) > 30.0


def test_int8_precision_refuses_a_model_that_was_not_quantized(generator_checkpoint: Path) -> None:
    onnx_path = onnx_file(ModelSource("generator", generator_checkpoint))
    with pytest.raises(ValueError, match="quantized generator"):
        OpenVinoGenerator(onnx_path, threads=1, precision="int8")


def test_an_openvino_ir_runs_on_openvino_only(tmp_path: Path) -> None:
    ir = tmp_path / "generator.xml"
    ir.write_text("<net/>")
    with pytest.raises(ValueError, match="OpenVINO IR"):
        create_backends("onnxruntime", ModelSource("generator", ir), ModelSource("cause", None))
