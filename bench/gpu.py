"""``gpu``: sessions per GPU at 25 fps, per generator width: TensorRT generator + CUDA post-processing, batched.

    python -m bench gpu                      # widths 64 32 16, batches 1..64: run it first on any GPU machine

Per width, a randomly initialised generator (timing does not depend on the
weights) is exported to ONNX and built into a TensorRT FP16 engine (minutes,
once; cached). For each batch size B it times, after warm-up, the engine's
own GPU path (``engine/pipeline/renderer.py``: ``GanimationFaces`` with a
``DeviceCompositor``): the generator on B sessions' crops, its outputs left
on the GPU, each face composed into its portrait at full resolution with its
I420 brought up to date by the CUDA kernels, and the frames copied back for
the encoders. The generator alone (host arrays in and out) is timed too.

One frame tick of B sessions costs ``t(B)``. A frame's audio can arrive just
after a batch started: it waits for that batch, then its own, so the
server's deadline (one frame interval after the audio arrived) holds when
``2 t(B) <= 1000 / fps`` ms. **Sessions per GPU** is the largest B that
meets it. Each session's video is then encoded on the host's CPU (aiortc's
VP8 with the engine's speed options: ``engine/output/video_encoder.py``),
measured here per portrait-size frame: the host's cores bound the sessions
too (``cores x 1000 / (fps x encode ms)``), and the table gives both bounds
and their minimum.

Without a CUDA GPU and the gpu extra (``--smoke`` on any machine), the GPU
parts are skipped with the reason printed, and only the CPU encode bound is
measured.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import numpy as np

from bench.plots import new_figure, save
from bench.report import Report, Target
from engine.au import N_AUS
from engine.avatar import Avatar, load_avatar
from engine.backends.model_files import ModelSource, resolve_source
from engine.backends.selection import tensorrt_unavailable_reason, usable_cores
from engine.output.tracks import VIDEO_CLOCK_RATE_HZ, VIDEO_TIME_BASE
from engine.output.video_encoder import FastVp8Encoder
from engine.pipeline import SAMPLE_RATE_HZ, AUFrame, RenderRequest
from engine.pipeline.frames import FrameTrace
from kernels.layers import FaceLayers

NAME = "gpu"
SUMMARY = "sessions per GPU at 25 fps per generator width (TensorRT + CUDA post-processing, batched); CPU encode bound"


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
        default=[1, 2] if smoke else [1, 2, 4, 8, 16, 32, 64],
        help="sessions per batch (default: %(default)s)",
    )
    parser.add_argument("--runs", type=int, default=3 if smoke else 50, help="timed runs a case (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=1 if smoke else 10, help="untimed runs (default: %(default)s)")
    parser.add_argument(
        "--encode-frames", type=int, default=10 if smoke else 100, help="frames to time VP8 on (default: %(default)s)"
    )
    parser.add_argument("--fps", type=int, default=25, help="frame rate of every session (default: 25)")


def encode_ms(avatar: Avatar, frames: int) -> float:
    """Median CPU ms to encode one portrait-size frame with the engine's VP8 settings (the face changing)."""
    rng = np.random.default_rng(0)
    encoder = FastVp8Encoder()
    opaque = np.zeros((1, *avatar.crop.shape[1:]), np.float32)  # attention 0: the colour map everywhere
    times = []
    for index in range(frames):
        color = np.clip(avatar.crop + rng.normal(0, 0.05, avatar.crop.shape), -1, 1).astype(np.float32)
        rgb = avatar.compose(FaceLayers(color, opaque)).rgb
        picture = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        picture.pts, picture.time_base = index * VIDEO_CLOCK_RATE_HZ // 25, VIDEO_TIME_BASE
        start = time.process_time()
        encoder.encode(picture)
        times.append((time.process_time() - start) * 1e3)
    return statistics.median(times[1:])


def _median_ms(call: Any, *, warmup: int, runs: int) -> float:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def measure_gpu(avatar: Avatar, width: int, batches: list[int], *, warmup: int, runs: int) -> list[dict[str, Any]]:
    """Per batch size, for one width: the generator alone, and the whole GPU tick as the server runs it
    (``GanimationFaces`` with a ``DeviceCompositor``: generator, compose and I420 on the GPU, frames back to
    the host). Needs a CUDA GPU and the gpu extra."""
    import torch

    from engine.backends.tensorrt_backend import create_tensorrt_backends
    from engine.pipeline.renderer import GanimationFaces
    from kernels.device_compose import DeviceCompositor
    from kernels.launch import ImageKernels
    from models.ganimation.io import save_generator
    from models.ganimation.net import Generator

    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        net = Generator(conv_dim=width).eval()
        checkpoint = Path(tmp) / f"generator-w{width}.pth"
        save_generator(net, net.config, checkpoint)
        generator, _ = create_tensorrt_backends(
            ModelSource("generator", checkpoint), resolve_source("cause", None), precision="f16"
        )
    faces = GanimationFaces(generator, compositor=DeviceCompositor(ImageKernels(0)))
    rng = np.random.default_rng(0)
    rows = []
    for batch in batches:
        aus = rng.uniform(0, 5, (batch, N_AUS)).astype(np.float32)
        requests = [RenderRequest(avatar, _au_frame(index, aus[index])) for index in range(batch)]
        images = np.repeat(avatar.crop[None], batch, axis=0)
        generator_ms = _median_ms(lambda: generator.run(images, aus), warmup=warmup, runs=runs)  # noqa: B023
        tick_ms = _median_ms(lambda: faces.pictures(requests), warmup=warmup, runs=runs)  # noqa: B023
        rows.append({"width": width, "batch": batch, "generator_ms": generator_ms, "tick_ms": tick_ms})
        print(f"  width {width:>3} batch {batch:>3}: generator {generator_ms:7.2f} ms, whole tick {tick_ms:7.2f} ms")
    generator.close()
    return rows


def _au_frame(index: int, aus: np.ndarray) -> AUFrame:
    return AUFrame(index, aus, FrameTrace(shown_sample=index * SAMPLE_RATE_HZ // 25, due_sample=0, audio_arrival_s=0.0))


def sessions_within(rows: list[dict[str, Any]], fps: int) -> int:
    """The largest batch whose whole GPU tick fits twice in a frame interval; 0 if none."""
    interval_ms = 1000.0 / fps
    fitting = [r["batch"] for r in rows if 2 * r["tick_ms"] <= interval_ms]
    return max(fitting, default=0)


def run(args: argparse.Namespace) -> Report:
    avatar = load_avatar()
    cores = usable_cores()
    encode = encode_ms(avatar, args.encode_frames)
    encode_bound = int(cores * 1000.0 / (args.fps * encode))
    print(f"gpu: VP8 encode {encode:.2f} ms CPU per frame: the host's {cores} cores hold {encode_bound} sessions")
    skipped = tensorrt_unavailable_reason()
    rows: list[dict[str, Any]] = []
    if skipped is None:
        for width in args.widths:
            rows += measure_gpu(avatar, width, args.batches, warmup=args.warmup, runs=args.runs)
    else:
        print(f"gpu: skipped the TensorRT generator and the CUDA kernels: {skipped}")
    summary = []
    for width in args.widths:
        width_rows = [r for r in rows if r["width"] == width]
        gpu_bound = sessions_within(width_rows, args.fps) if width_rows else None
        summary.append(
            {
                "width": width,
                "gpu_sessions": gpu_bound,
                "cpu_encode_sessions": encode_bound,
                "sessions": None if gpu_bound is None else min(gpu_bound, encode_bound),
            }
        )
    return Report(
        scenario=NAME,
        smoke=args.smoke,
        config={
            "widths": args.widths,
            "batches": args.batches,
            "runs": args.runs,
            "fps": args.fps,
            "rule": "sessions per GPU: largest batch B with 2 x tick(B) <= 1000/fps ms",
            "skipped": skipped,
        },
        setup={"backend": "tensorrt", "precision": "f16", "threads": cores, "generator_width": args.widths},
        results={"rows": rows, "summary": summary, "encode_ms": encode, "host_cores": cores, "skipped": skipped},
        headers=["width", "sessions per GPU (GPU bound)", "CPU encode bound", "sessions"],
        rows=[[s["width"], s["gpu_sessions"], s["cpu_encode_sessions"], s["sessions"]] for s in summary],
        targets=[
            Target(
                f"sessions per GPU at {args.fps} fps, width {s['width']}",
                "measured on a GPU (no goal set yet)",
                s["sessions"],
                None,
            )
            for s in summary
        ],
        plot=lambda path: _plot(rows, args.fps, skipped, path),
    )


def _plot(rows: list[dict[str, Any]], fps: int, skipped: str | None, path: Path) -> None:
    """Tick time against batch size per width, with the deadline's limit."""
    figure = new_figure(8, 4.5)
    axes = figure.add_subplot(1, 1, 1)
    if skipped is not None:
        axes.text(0.5, 0.5, f"GPU parts skipped:\n{skipped}", ha="center", va="center", wrap=True)
        axes.set_axis_off()
    else:
        for width in sorted({r["width"] for r in rows}, reverse=True):
            series = [r for r in rows if r["width"] == width]
            axes.plot(
                [r["batch"] for r in series],
                [r["tick_ms"] for r in series],
                marker="o",
                label=f"width {width}",
            )
        axes.axhline(500.0 / fps, linestyle=":", color="grey", label="half a frame interval")
        axes.set_xscale("log", base=2)
        axes.set_xlabel("sessions per batch")
        axes.set_ylabel("ms per tick (generator + GPU compose + frames back)")
        axes.legend(fontsize=8)
    save(figure, path)
