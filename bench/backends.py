"""``backends``: generator runtimes side by side: torch eager, ONNX Runtime, OpenVINO f32, bf16 and int8.

    python -m bench backends                       # widths 64 32 16, batches 1 4 16
    python -m bench.backends --widths 32 --batches 1 4 16 --runs 50   # the same, standalone

Each case builds a randomly initialised generator of the given width (timing
does not depend on the weights), exports it to ONNX once, warms each runtime
up, then times ``--runs`` calls of ``GeneratorBackend.run`` on host arrays
(copies in and out included, as the pipeline sees them). Ratios are to torch
eager at the same width and batch; the default CPU runtime (OpenVINO in the
precision ``avatar serve`` picks: bf16 where the CPU has it) is judged against
2x. Every runtime gets ``--threads`` (all cores) for one call at a time: the
runtimes are compared, not the server's parallel streams.

``openvino-int8`` is each generator quantized as ``python -m
engine.backends.openvino_int8`` does it (NNCF, calibrated on the default
avatar and AUs from the sample speech; skipped without the quantize extra);
its PSNR against bf16 is recorded per width (``results.int8_quality``), but
these are random weights: the figure that counts is the trained generator's,
which that command prints.
"""

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.plots import new_figure, save
from bench.report import Report, Target
from bench.targets import MIN_SPEEDUP_VS_TORCH
from engine.au import N_AUS
from engine.backends import DEFAULT_BACKEND
from engine.backends.base import BackendUnavailable, GeneratorBackend
from engine.backends.selection import default_precision

NAME = "backends"
SUMMARY = "generator runtimes (torch, ONNX Runtime, OpenVINO f32/bf16/int8) at batch 1/4/16, ratios to torch eager"


def default_runtime() -> str:
    """The row that stands for the server's default CPU runtime: OpenVINO in the precision ``avatar serve``
    picks here (bf16 where the CPU has it, else f32)."""
    if DEFAULT_BACKEND == "openvino":
        return f"openvino-{default_precision('openvino')}"
    return DEFAULT_BACKEND


def _runtimes(
    onnx_path: Path, net: object, threads: int, int8_quality: dict[str, Any]
) -> dict[str, Callable[[], GeneratorBackend]]:
    from engine.backends.onnxruntime_backend import OnnxRuntimeGenerator
    from engine.backends.openvino_backend import OpenVinoGenerator
    from engine.backends.torch_backend import TorchGenerator

    return {
        "torch": lambda: TorchGenerator(net, threads=threads),
        "onnxruntime": lambda: OnnxRuntimeGenerator(onnx_path, threads=threads),
        "openvino-f32": lambda: OpenVinoGenerator(onnx_path, threads=threads, precision="f32"),
        "openvino-bf16": lambda: OpenVinoGenerator(onnx_path, threads=threads, precision="bf16"),
        "openvino-int8": lambda: _int8_generator(onnx_path, threads, int8_quality),
    }


def _int8_generator(onnx_path: Path, threads: int, quality: dict[str, Any]) -> GeneratorBackend:
    """Quantize ``onnx_path`` as ``avatar quantize`` does (NNCF; the default avatar,
    the sample speech) and load the IR; its PSNR against bf16/f32 goes into ``quality``."""
    from bench.speech import sample_speech
    from engine.avatar import load_default_avatar
    from engine.backends.openvino_backend import OpenVinoGenerator
    from engine.cli.quantize import build_int8_generator

    target = onnx_path.with_name(f"{onnx_path.stem}-int8.xml")
    _, report = build_int8_generator(onnx_path, load_default_avatar().crop, sample_speech(), target)
    quality.update(report)
    print(
        f"  int8 PSNR vs {report['reference']}: {report['heldout_speech']['psnr_db']:.1f} dB held-out speech, "
        f"{report['random_aus']['psnr_db']:.1f} dB random AUs"
    )
    return OpenVinoGenerator(target, threads=threads, precision="int8")


def time_backend(backend: GeneratorBackend, batch: int, *, warmup: int, runs: int) -> list[float]:
    """Wall milliseconds of ``runs`` calls after ``warmup`` untimed ones."""
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (batch, 3, 128, 128)).astype(np.float32)
    aus = rng.uniform(0, 5, (batch, N_AUS)).astype(np.float32)
    for _ in range(warmup):
        backend.run(images, aus)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        backend.run(images, aus)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def measure(
    widths: list[int], batches: list[int], *, threads: int, warmup: int, runs: int
) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]]]:
    """Timing rows, and per width the int8 generator's PSNR report (random weights: see the module docstring)."""
    import torch

    from models.ganimation.export import export_generator_onnx
    from models.ganimation.net import Generator

    rows: list[dict[str, Any]] = []
    int8_quality: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for width in widths:
            torch.manual_seed(0)
            net = Generator(conv_dim=width).eval()
            onnx_path = Path(tmp) / f"generator-w{width}.onnx"
            export_generator_onnx(net, onnx_path)
            int8_quality[width] = {}
            for name, make in _runtimes(onnx_path, net, threads, int8_quality[width]).items():
                try:
                    backend = make()
                except BackendUnavailable as exc:
                    print(f"  {name}: skipped ({exc})")
                    continue
                for batch in batches:
                    times = time_backend(backend, batch, warmup=warmup, runs=runs)
                    rows.append(
                        {
                            "width": width,
                            "runtime": name,
                            "batch": batch,
                            "runs": runs,
                            "median_ms": statistics.median(times),
                            "p90_ms": float(np.percentile(times, 90)),
                            "per_image_ms": statistics.median(times) / batch,
                        }
                    )
                    median = rows[-1]["median_ms"]
                    print(f"  width {width:>3} {name:<14} batch {batch:>2}: {median:8.1f} ms", flush=True)
    for row in rows:
        eager = next(
            r for r in rows if r["runtime"] == "torch" and r["width"] == row["width"] and r["batch"] == row["batch"]
        )
        row["speedup_vs_torch"] = float(eager["median_ms"]) / float(row["median_ms"])
    return rows, int8_quality


def add_arguments(parser: argparse.ArgumentParser, *, smoke: bool) -> None:
    parser.add_argument(
        "--widths",
        type=int,
        nargs="+",
        default=[8] if smoke else [64, 32, 16],
        help="generator conv_dim values (default: %(default)s)",
    )
    parser.add_argument(
        "--batches",
        type=int,
        nargs="+",
        default=[1, 2] if smoke else [1, 4, 16],
        help="batch sizes (default: %(default)s)",
    )
    parser.add_argument("--threads", type=int, default=2, help="threads per runtime (default: 2)")
    parser.add_argument(
        "--warmup", type=int, default=1 if smoke else 5, help="untimed calls first (default: %(default)s)"
    )
    parser.add_argument(
        "--runs", type=int, default=3 if smoke else 30, help="timed calls per case (default: %(default)s)"
    )


def run(args: argparse.Namespace) -> Report:
    rows, int8_quality = measure(args.widths, args.batches, threads=args.threads, warmup=args.warmup, runs=args.runs)
    default = default_runtime()
    targets = [
        Target(
            f"{default} / torch eager, width {r['width']} batch {r['batch']}",
            f">= {MIN_SPEEDUP_VS_TORCH:g}x",
            r["speedup_vs_torch"],
            r["speedup_vs_torch"] >= MIN_SPEEDUP_VS_TORCH,
        )
        for r in rows
        if r["runtime"] == default
    ]
    return Report(
        scenario=NAME,
        smoke=args.smoke,
        config={
            "widths": args.widths,
            "batches": args.batches,
            "warmup": args.warmup,
            "runs": args.runs,
            "copies": "host arrays in and out included",
        },
        setup={
            "backend": sorted({r["runtime"] for r in rows}),
            "precision": ["f32", "bf16", "int8"],
            "threads": args.threads,
            "generator_width": args.widths,
        },
        results={"rows": rows, "default_runtime": default, "int8_quality": int8_quality},
        headers=["width", "runtime", "batch", "median ms", "p90 ms", "ms/image", "x torch"],
        rows=[
            [
                r["width"],
                r["runtime"],
                r["batch"],
                r["median_ms"],
                r["p90_ms"],
                r["per_image_ms"],
                r["speedup_vs_torch"],
            ]
            for r in rows
        ],
        targets=targets,
        plot=lambda path: _plot(rows, path),
    )


def _plot(rows: list[dict[str, Any]], path: Path) -> None:
    """One panel per width: ms per image by batch size, a bar per runtime (log scale)."""
    widths = sorted({r["width"] for r in rows}, reverse=True)
    runtimes = list(dict.fromkeys(r["runtime"] for r in rows))
    figure = new_figure(4 * len(widths) + 1, 4)
    for i, width in enumerate(widths):
        axes = figure.add_subplot(1, len(widths), i + 1)
        batches = sorted({r["batch"] for r in rows if r["width"] == width})
        bar = 0.8 / len(runtimes)
        for j, runtime in enumerate(runtimes):
            values = [
                next(
                    (r["per_image_ms"] for r in rows if (r["width"], r["runtime"], r["batch"]) == (width, runtime, b)),
                    0.0,
                )
                for b in batches
            ]
            axes.bar(
                [k + (j - (len(runtimes) - 1) / 2) * bar for k in range(len(batches))], values, width=bar, label=runtime
            )
        axes.set_xticks(range(len(batches)), [f"batch {b}" for b in batches])
        axes.set_yscale("log")
        axes.set_title(f"width {width}")
        axes.set_ylabel("ms per image (median)")
    figure.axes[0].legend(fontsize=8)
    save(figure, path)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.backends [options]``: the same as ``python -m bench backends [options]``."""
    from bench.__main__ import main as bench_main

    return bench_main([NAME, *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
