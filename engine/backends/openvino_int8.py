"""An int8 generator for OpenVINO: post-training quantization with NNCF, saved as an OpenVINO IR.

A build step, not a serving one (``avatar quantize``, needing
``pip install 'avatar-engine[quantize]'``): NNCF quantizes the generator's
ONNX graph once and the result is saved as an OpenVINO IR (``.xml`` +
``.bin``), which ``--backend openvino --precision int8`` loads with OpenVINO
alone. The IR keeps the quantization as FakeQuantize operations that
OpenVINO's CPU plugin runs in int8; the operations left unquantized run in
bf16 where the CPU has it, else f32. Calibration data and the quality check
live with the command (``engine/cli/quantize.py``).
"""

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from engine.backends.base import BackendUnavailable
from engine.backends.model_files import WEIGHTS_DIR, cache_dir
from engine.backends.onnx_io import generator_feed

INT8_FORMAT_VERSION = 1
"""Bumped whenever the quantization recipe changes, so a stale cached IR is not reused."""


def _int8_ir_name(onnx_path: Path) -> str:
    key = hashlib.sha256(onnx_path.read_bytes()).hexdigest()[:16]
    return f"generator-{key}-int8-v{INT8_FORMAT_VERSION}.xml"


def int8_ir_path(onnx_path: Path) -> Path:
    """Where ``avatar quantize`` writes the int8 IR of ``onnx_path``: the cache, keyed by the ONNX file's content."""
    return cache_dir() / _int8_ir_name(onnx_path)


def find_int8_ir(onnx_path: Path) -> Path | None:
    """The int8 IR made from exactly ``onnx_path``: shipped with the weights (the default generator's), or built
    into the cache by ``avatar quantize``; None if neither exists (or there is no such ONNX file yet)."""
    if not onnx_path.is_file():
        return None
    name = _int8_ir_name(onnx_path)
    for candidate in (WEIGHTS_DIR / name, cache_dir() / name):
        if candidate.is_file():
            return candidate
    return None


def is_int8_model(model: Any) -> bool:
    """Whether an OpenVINO model holds quantized operations (FakeQuantize), as NNCF leaves them."""
    return any(op.get_type_name() == "FakeQuantize" for op in model.get_ops())


def quantize_generator(onnx_path: Path, crop: np.ndarray, aus: np.ndarray, target: Path) -> Path:
    """Quantize the generator in ``onnx_path`` to int8, calibrated on ``crop`` with each of ``aus``; save as IR.

    Args:
        crop: (3, 128, 128) float32 in [-1, 1], the avatar's face crop.
        aus: (n, 17) AU intensities 0..5, one calibration sample each.
        target: the ``.xml`` to write (its ``.bin`` goes beside it).
    """
    try:
        import nncf
    except ImportError as exc:
        raise BackendUnavailable("quantizing needs NNCF: pip install 'avatar-engine[quantize]'") from exc
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    model = ov.Core().read_model(str(onnx_path))
    images = crop[None].astype(np.float32)
    dataset = nncf.Dataset(list(aus), lambda au: generator_feed(images, au[None]))
    # Activation ranges from the min and max over all samples, not NNCF's default mean of per-sample ranges,
    # which the many speech samples pull in so far that the random ones clip (default: 31 dB on random AUs).
    ranges = AdvancedQuantizationParameters(activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX)
    quantized = nncf.quantize(
        model, dataset, subset_size=len(aus), preset=nncf.QuantizationPreset.MIXED, advanced_parameters=ranges
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(target))
    return target
