"""An int8 generator for OpenVINO: post-training quantization with NNCF, calibrated on our own AU vectors.

A build step, not a serving one: NNCF (``pip install 'avatar-engine[quantize]'``)
quantizes the generator's ONNX graph once and the result is saved as an
OpenVINO IR (``.xml`` + ``.bin``), which ``--backend openvino --precision
int8`` loads with OpenVINO alone. The IR keeps the quantization as
FakeQuantize operations that OpenVINO's CPU plugin runs in int8; the
operations left unquantized run in bf16 where the CPU has it, else f32.

Calibration data is what the generator sees when serving: the avatar's face
crop, with the AU vectors our CAUSE estimates from speech (the bundled sample,
or the speech files given). Quality is reported as the PSNR of the blended
128x128 face crops against the bf16 (else f32) generator, on AU vectors the
calibration did not see: the last ``HELDOUT_FRACTION`` of the speech, and
random AU vectors over the whole intensity range (what expression sliders can
ask for; others join the calibration). Figures: ``bench/README.md``.

    python -m engine.backends.openvino_int8            # the default generator, into the cache
    python -m engine.backends.openvino_int8 --generator my.onnx --portrait me.jpg -o my_int8.xml
"""

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.au import AU_MAX_INTENSITY, N_AUS
from engine.backends.base import BackendUnavailable, GeneratorBackend
from engine.backends.model_files import cache_dir, onnx_file, resolve_source
from engine.backends.onnx_io import generator_feed

INT8_FORMAT_VERSION = 1
"""Bumped whenever the quantization recipe changes, so a stale cached IR is not reused."""
HELDOUT_FRACTION = 0.4
"""The end of the speech kept out of calibration, to measure the quality on."""
RANDOM_AU_VECTORS = 64
"""Random AU vectors (uniform over 0..5) added to the calibration, and others in the quality check."""
MIN_PSNR_DB = 40.0
"""The least PSNR against the bf16/f32 generator at which the int8 one counts as without visible loss."""
FPS = 25


def int8_ir_path(onnx_path: Path) -> Path:
    """Where the int8 IR of ``onnx_path`` is cached (keyed by the ONNX file's content)."""
    key = hashlib.sha256(onnx_path.read_bytes()).hexdigest()[:16]
    return cache_dir() / f"generator-{key}-int8-v{INT8_FORMAT_VERSION}.xml"


def is_int8_model(model: Any) -> bool:
    """Whether an OpenVINO model holds quantized operations (FakeQuantize), as NNCF leaves them."""
    return any(op.get_type_name() == "FakeQuantize" for op in model.get_ops())


def speech_aus(speech: np.ndarray, *, fps: int = FPS) -> np.ndarray:
    """AU vectors (n_frames, 17), 0..5, that the default CAUSE estimates from 16 kHz mono float32 ``speech``."""
    from engine.audio import log_mel
    from engine.backends.onnxruntime_backend import OnnxRuntimeAUStep
    from engine.pipeline.au_estimator import AUEstimator

    estimator = AUEstimator(OnnxRuntimeAUStep(onnx_file(resolve_source("cause", None)), threads=1), fps=fps)
    frames = estimator.push(log_mel(speech))
    return np.stack([aus for _, aus in frames]).astype(np.float32)


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


def blended_faces(generator: GeneratorBackend, crop: np.ndarray, aus: np.ndarray) -> np.ndarray:
    """The generator's blended face crops (n, 3, 128, 128) in [-1, 1] for each of ``aus``, one at a time."""
    images = crop[None].astype(np.float32)
    faces = []
    for au in aus:
        color, mask = generator.run(images, au[None])
        faces.append((mask * images + (1 - mask) * color)[0])  # GANimation's output: A x input + (1 - A) x C
    return np.stack(faces)


def psnr_db(faces: np.ndarray, reference: np.ndarray) -> float:
    """PSNR of face crops in [-1, 1] against ``reference``, dB, on the 0..255 scale a viewer sees."""
    mse = float(np.mean(((faces.astype(np.float64) - reference) * 127.5) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def quality_report(onnx_path: Path, int8_path: Path, crop: np.ndarray, heldout_aus: np.ndarray) -> dict[str, Any]:
    """PSNR of the int8 generator's faces against the bf16 (else f32) one: held-out speech AUs and random AUs."""
    from engine.backends.openvino_backend import OpenVinoGenerator, Precision, bf16_supported

    precision: Precision = "bf16" if bf16_supported() else "f32"
    reference = OpenVinoGenerator(onnx_path, threads=1, precision=precision)
    int8 = OpenVinoGenerator(int8_path, threads=1, precision="int8")
    report: dict[str, Any] = {"reference": f"openvino-{precision}"}
    for name, aus in (("heldout_speech", heldout_aus), ("random_aus", random_aus(RANDOM_AU_VECTORS, seed=1))):
        report[name] = {
            "frames": int(aus.shape[0]),
            "psnr_db": round(psnr_db(blended_faces(int8, crop, aus), blended_faces(reference, crop, aus)), 2),
        }
    report["min_psnr_db"] = min(report[name]["psnr_db"] for name in ("heldout_speech", "random_aus"))
    report["met"] = bool(report["min_psnr_db"] >= MIN_PSNR_DB)
    return report


def random_aus(count: int, seed: int) -> np.ndarray:
    """``count`` AU vectors uniform over 0..5: combinations and intensities speech alone never makes."""
    return np.random.default_rng(seed).uniform(0, AU_MAX_INTENSITY, (count, N_AUS)).astype(np.float32)


def build_int8_generator(
    onnx_path: Path, crop: np.ndarray, speech: np.ndarray, target: Path
) -> tuple[Path, dict[str, Any]]:
    """Calibrate on the first part of ``speech`` and random AUs, quantize into ``target``, check on the rest.

    Random AU vectors join the calibration because expression sliders shift
    AUs anywhere in 0..5: calibrated on speech alone (intensities up to ~3),
    the quantization ranges clip the rest (measured here: 27 dB on random AUs).
    """
    aus = speech_aus(speech)
    split = int(round(aus.shape[0] * (1 - HELDOUT_FRACTION)))
    calibration = np.concatenate([aus[:split], random_aus(RANDOM_AU_VECTORS, seed=0)])
    quantize_generator(onnx_path, crop, calibration, target)
    report = quality_report(onnx_path, target, crop, aus[split:])
    report["calibration_frames"] = int(calibration.shape[0])
    return target, report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine.backends.openvino_int8",
        description="Quantize the generator to int8 for OpenVINO (NNCF post-training quantization calibrated on "
        "AU vectors our CAUSE estimates from speech) and report its PSNR against the bf16/f32 generator. "
        "Needs: pip install 'avatar-engine[quantize]'. The IR it writes needs only OpenVINO to run.",
    )
    parser.add_argument("--generator", type=Path, help="generator checkpoint or ONNX (default: the default weights)")
    parser.add_argument("--portrait", type=Path, help="the avatar's portrait (default: the bundled one)")
    parser.add_argument(
        "--speech",
        type=Path,
        nargs="+",
        help="speech files to calibrate on, 16 kHz after resampling (default: the "
        "bundled sample); the last 40 %% is kept out of calibration to measure the quality on",
    )
    parser.add_argument(
        "-o", "--output", type=Path, help="the .xml to write (default: the cache, where --precision int8 looks)"
    )
    args = parser.parse_args(argv)
    from engine.audio import load_audio_file
    from engine.audio.samples import SAMPLE_SPEECH
    from engine.avatar import load_avatar

    try:
        onnx_path = onnx_file(resolve_source("generator", args.generator))
        crop = load_avatar(args.portrait).crop
        speech = (
            np.concatenate([load_audio_file(p) for p in args.speech]) if args.speech else load_audio_file(SAMPLE_SPEECH)
        ).astype(np.float32)
        target = args.output or int8_ir_path(onnx_path)
        _, report = build_int8_generator(onnx_path, crop, speech, target)
    except (BackendUnavailable, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    report["generator"] = str(onnx_path)
    target.with_suffix(".json").write_text(json.dumps(report, indent=2))
    print(
        f"wrote {target} (calibrated on {report['calibration_frames']} frames); PSNR vs {report['reference']}: "
        f"{report['heldout_speech']['psnr_db']:.1f} dB on held-out speech, {report['random_aus']['psnr_db']:.1f} dB "
        f"on random AUs (target >= {MIN_PSNR_DB:g} dB: {'met' if report['met'] else 'MISSED'})"
    )
    return 0 if report["met"] else 2


if __name__ == "__main__":
    sys.exit(main())
