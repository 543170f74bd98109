"""``avatar quantize``: the generator in int8 for OpenVINO, calibrated on our own AU vectors, with its quality.

Calibration data is what the generator sees when serving: the avatar's face
crop, with the AU vectors our CAUSE estimates from speech (the bundled sample,
or the speech files given), plus random AU vectors over the whole intensity
range (expression sliders can ask for any). Quality is reported as the PSNR of
the blended 128x128 face crops against the bf16 (else f32) generator, on AU
vectors the calibration did not see: the last ``HELDOUT_FRACTION`` of the
speech and other random vectors. Figures: ``bench/README.md``. The quantizing
itself is ``engine.backends.openvino_int8``.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from engine.au import AU_MAX_INTENSITY, N_AUS
from engine.backends.base import GeneratorBackend
from engine.backends.model_files import onnx_file, resolve_source
from engine.backends.openvino_int8 import int8_ir_path, quantize_generator

HELDOUT_FRACTION = 0.4
"""The end of the speech kept out of calibration, to measure the quality on."""
RANDOM_AU_VECTORS = 64
"""Random AU vectors (uniform over 0..5) added to the calibration, and others in the quality check."""
MIN_PSNR_DB = 40.0
"""The least PSNR against the bf16/f32 generator at which the int8 one counts as without visible loss."""
FPS = 25


def speech_aus(speech: np.ndarray, *, fps: int = FPS) -> np.ndarray:
    """AU vectors (n_frames, 17), 0..5, that the default CAUSE estimates from 16 kHz mono float32 ``speech``."""
    from engine.audio import log_mel
    from engine.backends.onnxruntime_backend import OnnxRuntimeAUStep
    from engine.pipeline.au_estimator import AUEstimator

    estimator = AUEstimator(OnnxRuntimeAUStep(onnx_file(resolve_source("cause", None)), threads=1), fps=fps)
    frames = estimator.push(log_mel(speech))
    return np.stack([aus for _, aus in frames]).astype(np.float32)


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


def add_parser(commands: argparse._SubParsersAction, name: str) -> None:
    parser = commands.add_parser(
        name,
        help="build the int8 generator for OpenVINO (--precision int8) and report its quality",
        description="Quantize the generator to int8 for OpenVINO (NNCF post-training quantization calibrated on "
        "AU vectors our CAUSE estimates from speech) and report its PSNR against the bf16/f32 generator. "
        "Needs: pip install 'avatar-engine[quantize]'. The IR it writes needs only OpenVINO to run. Exit 2 "
        f"when the PSNR misses {MIN_PSNR_DB:g} dB.",
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
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.audio import load_audio_file
    from engine.audio.samples import SAMPLE_SPEECH
    from engine.avatar import load_avatar

    onnx_path = onnx_file(resolve_source("generator", args.generator))
    crop = load_avatar(args.portrait).crop
    files = args.speech or [SAMPLE_SPEECH]
    speech = np.concatenate([load_audio_file(p) for p in files]).astype(np.float32)
    target = args.output or int8_ir_path(onnx_path)
    _, report = build_int8_generator(onnx_path, crop, speech, target)
    report["generator"] = str(onnx_path)
    target.with_suffix(".json").write_text(json.dumps(report, indent=2))
    print(
        f"wrote {target} (calibrated on {report['calibration_frames']} frames); PSNR vs {report['reference']}: "
        f"{report['heldout_speech']['psnr_db']:.1f} dB on held-out speech, {report['random_aus']['psnr_db']:.1f} dB "
        f"on random AUs (target >= {MIN_PSNR_DB:g} dB: {'met' if report['met'] else 'MISSED'})"
    )
    if not report["met"]:
        print(f"avatar quantize: error: the int8 generator is below {MIN_PSNR_DB:g} dB; keep bf16", file=sys.stderr)
        return 2
    return 0
