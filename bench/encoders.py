"""``encoders``: CPU per frame of the output encoders, as aiortc and Pillow set them up and as the engine does.

    python -m bench encoders                 # 250 frames (10 s at 25 fps), 512 px video, JPEG at 512 and 256 px

Frames are what the server sends: the default generator animating the
default avatar with the AUs our CAUSE estimates from the sample speech,
composed into the 512x512 portrait (looped to ``--frames``). Each candidate
encodes the same frames, the candidates taking turns frame by frame so that
a busy machine slows them alike; the cost is CPU time (``process_time``:
every thread of the encoder counted), median over the frames after the first
``--warmup`` (its set-up and first keyframe).

- **video**: aiortc's own VP8 and H.264 encoders against the same classes
  with the engine's speed options (``engine/output/video_encoder.py``), at
  aiortc's starting bitrates (VP8 500 kbps, H.264 1 Mbps); for each, the
  bitrate it produced and the PSNR of the decoded luma against the input.
- **JPEG** (WebSocket pictures): Pillow as ``engine/server/websocket.py``
  encodes today against ``engine/output/jpeg.py`` (simplejpeg), quality 85,
  at the portrait's size and at half of it (a resize).
"""

import argparse
import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc.codecs.base import Encoder
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from PIL import Image

from bench.models import build_backends, generator_source
from bench.plots import new_figure, save
from bench.report import Report, Target
from bench.speech import sample_speech
from bench.targets import COMPUTE_BUDGET
from engine.avatar import load_avatar
from engine.backends import DEFAULT_BACKEND
from engine.backends.model_files import cache_dir
from engine.cli.quantize import speech_aus
from engine.output.jpeg import DEFAULT_QUALITY, encode_jpeg
from engine.output.tracks import VIDEO_CLOCK_RATE_HZ, VIDEO_TIME_BASE
from engine.output.video_encoder import FastH264Encoder, FastVp8Encoder
from kernels.layers import FaceLayers

NAME = "encoders"
SUMMARY = "CPU per frame of VP8/H.264 (aiortc's settings vs the engine's) and of JPEG (Pillow vs simplejpeg)"
VIDEO_CANDIDATES: dict[str, tuple[str, Callable[[], Encoder]]] = {
    "vp8 aiortc": ("vp8", Vp8Encoder),
    "vp8 engine": ("vp8", FastVp8Encoder),
    "h264 aiortc": ("h264", H264Encoder),
    "h264 engine": ("h264", FastH264Encoder),
}
"""Name -> (decoder to check it with, encoder factory)."""
ENCODE_BUDGET_MS = next(line.budget_ms for line in COMPUTE_BUDGET if line.stages == ("encode",))


def add_arguments(parser: argparse.ArgumentParser, *, smoke: bool) -> None:
    parser.add_argument(
        "--frames", type=int, default=12 if smoke else 250, help="frames each candidate encodes (default: %(default)s)"
    )
    parser.add_argument(
        "--warmup", type=int, default=2 if smoke else 25, help="first frames left out (default: %(default)s)"
    )
    parser.add_argument(
        "--width",
        type=int,
        default=8 if smoke else None,
        help="generator conv_dim: a random generator of this width; omit for the server's default generator",
    )


def rendered_frames(count: int, width: int | None) -> list[np.ndarray]:
    """``count`` 512x512 RGB frames the server would send for the sample speech (AUs looped)."""
    avatar = load_avatar()
    generator, _, _ = build_backends(DEFAULT_BACKEND, generator_source(width, cache_dir() / "bench"), threads=1)
    aus = speech_aus(sample_speech())
    frames = []
    for index in range(count):
        au = aus[index % len(aus)][None]
        color, mask = generator.run(avatar.crop[None], au)
        frames.append(avatar.compose(FaceLayers(color[0], mask[0])).rgb)  # full-resolution compose, as served
    return frames


def _pillow_jpeg(rgb: np.ndarray, size: tuple[int, int]) -> bytes:
    """What engine/server/websocket.py does today: Pillow, bilinear resize when needed, quality 85."""
    image = Image.fromarray(np.ascontiguousarray(rgb))
    if image.size != size:
        image = image.resize(size, Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=DEFAULT_QUALITY)
    return buffer.getvalue()


def measure_video(frames: list[np.ndarray], warmup: int) -> list[dict[str, Any]]:
    pictures = [av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p") for rgb in frames]
    encoders = {name: factory() for name, (_, factory) in VIDEO_CANDIDATES.items()}
    decoders: dict[str, Any] = {name: av.CodecContext.create(c, "r") for name, (c, _) in VIDEO_CANDIDATES.items()}
    cpu_ms: dict[str, list[float]] = {name: [] for name in encoders}
    sent_bytes = dict.fromkeys(encoders, 0)
    psnr: dict[str, list[float]] = {name: [] for name in encoders}
    for index, picture in enumerate(pictures):
        picture.pts, picture.time_base = index * VIDEO_CLOCK_RATE_HZ // 25, VIDEO_TIME_BASE
        luma = picture.to_ndarray()[: picture.height]
        for name, encoder in encoders.items():
            start = time.process_time()
            payloads, _ = encoder.encode(picture)
            cpu_ms[name].append((time.process_time() - start) * 1e3)
            data = _depayloaded(VIDEO_CANDIDATES[name][0], payloads)
            if index >= warmup:
                sent_bytes[name] += len(data)
            for decoded in decoders[name].decode(av.Packet(data)) if data else []:
                if index >= warmup:
                    error = np.mean((decoded.to_ndarray()[: picture.height].astype(np.float64) - luma) ** 2)
                    psnr[name].append(10 * np.log10(255.0**2 / max(float(error), 1e-12)))
    seconds = max(1, len(pictures) - warmup) / 25
    return [
        {
            "encoder": name,
            "cpu_ms_p50": float(np.median(cpu_ms[name][warmup:])),
            "cpu_ms_p95": float(np.percentile(cpu_ms[name][warmup:], 95)),
            "kbps": sent_bytes[name] * 8 / seconds / 1000,
            "luma_psnr_db": float(np.mean(psnr[name])) if psnr[name] else None,
        }
        for name in encoders
    ]


def _depayloaded(codec: str, payloads: list[bytes]) -> bytes:
    """The encoded frame back from aiortc's RTP payloads, for a decoder."""
    from aiortc.codecs.h264 import h264_depayload
    from aiortc.codecs.vpx import vp8_depayload

    depayload = vp8_depayload if codec == "vp8" else h264_depayload
    return b"".join(depayload(payload) for payload in payloads)


def measure_jpeg(frames: list[np.ndarray], warmup: int) -> list[dict[str, Any]]:
    height_px, width_px = frames[0].shape[:2]
    sizes = [(width_px, height_px), (width_px // 2, height_px // 2)]
    candidates: dict[str, Callable[[np.ndarray, tuple[int, int]], bytes]] = {
        "pillow (websocket.py today)": _pillow_jpeg,
        "engine/output/jpeg.py": encode_jpeg,
    }
    rows = []
    for size in sizes:
        cpu_ms: dict[str, list[float]] = {name: [] for name in candidates}
        sizes_bytes: dict[str, list[int]] = {name: [] for name in candidates}
        for rgb in frames:
            for name, encode in candidates.items():
                start = time.process_time()
                jpeg = encode(rgb, size)
                cpu_ms[name].append((time.process_time() - start) * 1e3)
                sizes_bytes[name].append(len(jpeg))
        for name in candidates:
            rows.append(
                {
                    "encoder": name,
                    "size_px": f"{size[0]}x{size[1]}",
                    "cpu_ms_p50": float(np.median(cpu_ms[name][warmup:])),
                    "cpu_ms_p95": float(np.percentile(cpu_ms[name][warmup:], 95)),
                    "kbytes": float(np.mean(sizes_bytes[name])) / 1000,
                }
            )
    return rows


def run(args: argparse.Namespace) -> Report:
    frames = rendered_frames(args.frames, args.width)
    video = measure_video(frames, args.warmup)
    jpeg = measure_jpeg(frames, args.warmup)
    by_name = {row["encoder"]: row for row in video}
    targets = [
        Target(f"{name} encode, p50", f"<= {ENCODE_BUDGET_MS:g} ms CPU", by_name[name]["cpu_ms_p50"], None)
        for name in ("vp8 engine", "h264 engine")
    ]
    targets = [Target(t.name, t.goal, t.measured, (t.measured or 0) <= ENCODE_BUDGET_MS) for t in targets]
    for codec in ("vp8", "h264"):
        ours, theirs = by_name[f"{codec} engine"]["luma_psnr_db"], by_name[f"{codec} aiortc"]["luma_psnr_db"]
        if ours is not None and theirs is not None:
            name = f"{codec} engine luma PSNR - aiortc's"
            targets.append(Target(name, ">= -0.5 dB", ours - theirs, ours >= theirs - 0.5))
    return Report(
        scenario=NAME,
        smoke=args.smoke,
        config={"frames": args.frames, "warmup": args.warmup, "video_size_px": list(frames[0].shape[1::-1])},
        setup={
            "backend": DEFAULT_BACKEND,
            "precision": "n/a (encoders)",
            "threads": 1,
            "generator_width": args.width or "default",
        },
        results={"video": video, "jpeg": jpeg},
        headers=["encoder", "size", "CPU ms p50", "CPU ms p95", "kbps / kB", "luma PSNR dB"],
        rows=[
            *[[r["encoder"], "512x512", r["cpu_ms_p50"], r["cpu_ms_p95"], r["kbps"], r["luma_psnr_db"]] for r in video],
            *[[r["encoder"], r["size_px"], r["cpu_ms_p50"], r["cpu_ms_p95"], r["kbytes"], None] for r in jpeg],
        ],
        targets=targets,
        plot=lambda path: _plot(video, jpeg, path),
    )


def _plot(video: list[dict[str, Any]], jpeg: list[dict[str, Any]], path: Path) -> None:
    """CPU ms per frame (p50, p95 as a tick): video encoders left, JPEG right."""
    figure = new_figure(10, 4)
    for panel, (rows, labels) in enumerate(
        ((video, [r["encoder"] for r in video]), (jpeg, [f"{r['encoder']}\n{r['size_px']}" for r in jpeg]))
    ):
        axes = figure.add_subplot(1, 2, panel + 1)
        axes.bar(range(len(rows)), [r["cpu_ms_p50"] for r in rows], color="tab:blue", label="p50")
        axes.scatter(range(len(rows)), [r["cpu_ms_p95"] for r in rows], color="black", marker="_", s=200, label="p95")
        axes.set_xticks(range(len(rows)), labels, fontsize=7, rotation=20)
        axes.set_ylabel("CPU ms per frame")
        axes.set_title("video (512x512)" if panel == 0 else "JPEG, quality 85")
    figure.axes[0].legend(fontsize=8)
    save(figure, path)
