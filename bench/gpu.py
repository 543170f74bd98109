"""``gpu``: sessions per GPU at 25 fps, per generator width: TensorRT generator + CUDA post-processing, batched.

    python -m bench gpu                      # widths 64 32 16, batches 1..64: run it first on any GPU machine

Per width, a randomly initialised generator (timing does not depend on the
weights) is exported to ONNX and built into a TensorRT FP16 engine (minutes,
once; cached). For each batch size B it times, after warm-up:

- **generator**: ``TensorRTGenerator.run`` on B crops and AU vectors, host
  arrays in and out (what the server's scheduler calls today);
- **post-processing**: the CUDA kernels' ``postprocess`` for B sessions
  (blend, upscale, feathered paste, I420 of the box's blocks, one launch), on
  device buffers, synchronised (``kernels/README.md``); each batch size's
  last frame is then checked against the numpy reference, bit for bit.

One frame tick of B sessions costs ``t(B)`` = generator + post-processing. A
frame's audio can arrive just after a batch started: it waits for that batch,
then its own, so the server's deadline (one frame interval after the audio
arrived) holds when ``2 t(B) <= 1000 / fps`` ms. **Sessions per GPU** is the
largest B that meets it. Each session's video is then encoded on the host's
CPU (aiortc's VP8 with the engine's speed options: ``engine/output/
video_encoder.py``), measured here per 512 px frame: the host's cores bound
the sessions too (``cores x 1000 / (fps x encode ms)``), and the table gives
both bounds and their minimum.

Without a CUDA GPU and the gpu extra (``--smoke`` on any machine), the GPU
parts are skipped with the reason printed, and only the CPU encode bound is
measured.
"""

import argparse
import fractions
import statistics
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import av
import numpy as np

from bench.plots import new_figure, save
from bench.report import Report, Target
from engine.au import N_AUS
from engine.avatar import Avatar, load_avatar
from engine.backends.model_files import ModelSource, resolve_source
from engine.backends.selection import tensorrt_unavailable_reason, usable_cores
from engine.output.video_encoder import FastVp8Encoder

NAME = "gpu"
SUMMARY = "sessions per GPU at 25 fps per generator width (TensorRT + CUDA post-processing, batched); CPU encode bound"
VIDEO_TIME_BASE_HZ = 90_000


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
    times = []
    for index in range(frames):
        face = np.clip(avatar.crop + rng.normal(0, 0.05, avatar.crop.shape), -1, 1).astype(np.float32)
        picture = av.VideoFrame.from_ndarray(avatar.compose(face), format="rgb24").reformat(format="yuv420p")
        picture.pts, picture.time_base = index * VIDEO_TIME_BASE_HZ // 25, fractions.Fraction(1, VIDEO_TIME_BASE_HZ)
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
    """Generator and post-processing ms per batch size for one width (needs a CUDA GPU and the gpu extra)."""
    import torch

    from engine.backends.tensorrt_backend import create_tensorrt_backends
    from models.checkpoints import save_generator
    from models.ganimation import Generator

    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        net = Generator(conv_dim=width).eval()
        checkpoint = Path(tmp) / f"generator-w{width}.pth"
        save_generator(net, net.config, checkpoint)
        generator, _ = create_tensorrt_backends(
            ModelSource("generator", checkpoint), resolve_source("cause", None), precision="f16"
        )
    post = GpuPostprocess(avatar, max(batches))
    rng = np.random.default_rng(0)
    rows = []
    for batch in batches:
        images = np.repeat(avatar.crop[None], batch, axis=0)
        aus = rng.uniform(0, 5, (batch, N_AUS)).astype(np.float32)
        generator_ms = _median_ms(lambda: generator.run(images, aus), warmup=warmup, runs=runs)  # noqa: B023
        post_ms = _median_ms(lambda: post.run(batch), warmup=warmup, runs=runs)  # noqa: B023
        exact = post.matches_reference()
        rows.append(
            {
                "width": width,
                "batch": batch,
                "generator_ms": generator_ms,
                "postprocess_ms": post_ms,
                "postprocess_matches_reference": exact,
            }
        )
        print(f"  width {width:>3} batch {batch:>3}: generator {generator_ms:7.2f} ms, post {post_ms:6.2f} ms")
    generator.close()
    return rows


class GpuPostprocess:
    """Up to ``max_batch`` sessions' post-processing on the GPU: device-resident portrait, generator tensors and
    I420 frames, as a server keeps them; ``core`` as ``ImageKernels`` takes it (tests pass a CPU stand-in)."""

    def __init__(self, avatar: Avatar, max_batch: int, *, core: ModuleType | None = None) -> None:
        from kernels.items import I420Job, I420Ref, ImageRef, PostprocessJob, PreprocessJob
        from kernels.launch import ImageKernels, address, import_cuda_core

        self._core = core or import_cuda_core()
        self.kernels = ImageKernels(0, core=self._core)
        device = self.kernels.device
        self.stream = device.create_stream()
        self.portrait = np.ascontiguousarray(avatar.portrait)
        height, width = self.portrait.shape[:2]
        self.size = avatar.crop.shape[-1]
        self.box = avatar.crop_box
        self._buffers: list[Any] = []  # kept alive as long as the jobs point into them
        rng = np.random.default_rng(1)
        self.color = rng.uniform(-1, 1, (3, self.size, self.size)).astype(np.float32)
        self.mask = rng.uniform(0, 1, (1, self.size, self.size)).astype(np.float32)
        self.feather = avatar.feather.astype(np.float32)
        portrait_ref = ImageRef.packed(address(self._upload(self.portrait)), height, width)
        self._crop = self._allocate(3 * self.size * self.size * 4)
        self.kernels.preprocess([PreprocessJob(portrait_ref, self.box)], self._crop, stream=self.stream)
        self._feather = self._upload(self.feather)
        color, mask = address(self._upload(self.color)), address(self._upload(self.mask))
        self._frames, self.jobs = [], []
        for _ in range(max_batch):  # a frame buffer per session, holding the portrait's I420
            frame = self._allocate(height * width * 3 // 2)
            planes = I420Ref.packed(address(frame), height, width)
            self.kernels.rgb_to_i420([I420Job(portrait_ref, planes)], stream=self.stream)
            self._frames.append(frame)
            self.jobs.append(PostprocessJob(portrait_ref, self.box, address(self._crop), color, mask, None, planes))
        self.stream.sync()

    def _allocate(self, nbytes: int) -> Any:
        buffer = self.kernels.device.allocate(nbytes, stream=self.stream)
        self._buffers.append(buffer)
        return buffer

    def _upload(self, array: np.ndarray) -> Any:
        array = np.ascontiguousarray(array)
        buffer = self._allocate(array.nbytes)
        host = self._core.Buffer.from_handle(array.ctypes.data, array.nbytes, owner=array)
        buffer.copy_from(host, stream=self.stream)
        return buffer

    def run(self, batch: int) -> None:
        """One frame tick: ``batch`` sessions' blend, upscale, paste and I420, one launch, waited for."""
        self.kernels.postprocess(self.jobs[:batch], self._feather, stream=self.stream, size=self.size)
        self.stream.sync()

    def matches_reference(self, index: int = 0) -> bool:
        """Whether session ``index``'s I420 frame equals the numpy reference's (kernels/reference.py), exactly."""
        from kernels.reference import attention_blend, crop_resize_normalize, paste_feathered, rgb_to_i420

        height, width = self.portrait.shape[:2]
        got = np.empty(height * width * 3 // 2, np.uint8)
        host = self._core.Buffer.from_handle(got.ctypes.data, got.nbytes, owner=got)
        self._frames[index].copy_to(host, stream=self.stream)
        self.stream.sync()
        face = attention_blend(crop_resize_normalize(self.portrait, self.box), self.color, self.mask)
        pasted = paste_feathered(self.portrait, face, self.box, self.feather)
        want = np.concatenate([plane.ravel() for plane in rgb_to_i420(pasted)])
        return bool(np.array_equal(got, want))


def sessions_within(rows: list[dict[str, Any]], fps: int) -> int:
    """The largest batch whose tick (generator + post-processing) fits twice in a frame interval; 0 if none."""
    interval_ms = 1000.0 / fps
    fitting = [r["batch"] for r in rows if 2 * (r["generator_ms"] + r["postprocess_ms"]) <= interval_ms]
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
            "rule": "sessions per GPU: largest batch B with 2 x (generator + post-processing)(B) <= 1000/fps ms",
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
    """Tick time (generator + post-processing) against batch size per width, with the deadline's limit."""
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
                [r["generator_ms"] + r["postprocess_ms"] for r in series],
                marker="o",
                label=f"width {width}",
            )
        axes.axhline(500.0 / fps, linestyle=":", color="grey", label="half a frame interval")
        axes.set_xscale("log", base=2)
        axes.set_xlabel("sessions per batch")
        axes.set_ylabel("ms per tick (generator + post-processing)")
        axes.legend(fontsize=8)
    save(figure, path)
