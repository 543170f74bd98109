"""``stages``: what each step of the pipeline costs per video frame, against ARCHITECTURE.md's budget.

One session runs the server's code path on the built-in speech, looped
(``--seconds``, a minute by default), as fast as it can (compute per stage,
not latency: nothing waits for real time). Audio goes in as aiortc's Opus
decoder hands it to the server (48 kHz stereo s16, 20 ms packets); each frame
the session completes is rendered, converted to I420 at the output size as
the WebRTC track does it (``PictureFormatter``: swscale) and encoded by
the server's encoder (aiortc's, with the engine's speed options:
``engine.output.video_encoder``; VP8 by default, as aiortc negotiates first).

Stages are timed by probes (``bench/probes.py``) on the functions the engine
calls: ``AudioConverter.push`` (ingest), ``StreamingLogMel.push`` (mel), the
AU runtime's ``step``, the generator runtime's ``run``, ``Avatar.compose``
(compose: blend, upsample and paste at full resolution, and the I420 of the
changed blocks), ``PictureFormatter.__call__`` (i420: to the output size) and
the encoder's ``encode``. Audio stages run per 20 ms packet; a frame is
charged the packets that completed it (two at 25 fps).
"""

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from bench.models import add_model_arguments, build_backends, generator_source
from bench.plots import new_figure, save
from bench.probes import Probe, StageTimer, probed
from bench.report import Report, Target, percentiles
from bench.speech import WEBRTC_RATE_HZ, as_webrtc_audio, looped_speech
from bench.targets import COMPUTE_BUDGET
from engine.audio import AudioConverter, StreamingLogMel
from engine.avatar import Avatar, load_avatar
from engine.backends.base import AUStepBackend, GeneratorBackend
from engine.backends.model_files import cache_dir
from engine.output.pictures import PictureFormatter
from engine.output.tracks import VIDEO_CLOCK_RATE_HZ, VIDEO_TIME_BASE
from engine.output.video_encoder import FAST_ENCODERS
from engine.pipeline import Renderer, RenderRequest, Session

NAME = "stages"
SUMMARY = "per-frame cost of each pipeline stage (p50/p95/p99) against the ARCHITECTURE.md budget"
STAGES = ("ingest", "mel", "au_model", "generator", "compose", "i420", "encode")
"""In pipeline order; the probes' stage names."""
PACKET_MS = 20
"""The browser's Opus packet: the chunk the server's ingest sees."""


def add_arguments(parser: argparse.ArgumentParser, *, smoke: bool) -> None:
    parser.add_argument(
        "--seconds",
        type=float,
        default=2.0 if smoke else 60.0,
        help="seconds of speech (the sample looped) (default: %(default)s)",
    )
    parser.add_argument(
        "--warmup-frames",
        type=int,
        default=5 if smoke else 25,
        help="first frames left out of the statistics (default: %(default)s)",
    )
    parser.add_argument("--fps", type=int, default=25, help="video frame rate (default: 25)")
    parser.add_argument("--size", type=int, default=512, help="output video size, px (default: 512, the server's)")
    parser.add_argument("--codec", choices=sorted(FAST_ENCODERS), default="vp8", help="video encoder (default: vp8)")
    add_model_arguments(parser, default_width=8 if smoke else None)


def run(args: argparse.Namespace) -> Report:
    generator, au_backend, setup = build_backends(
        args.backend,
        generator_source(args.width, cache_dir() / "bench"),
        precision=args.precision,
        threads=args.threads,
        streams=args.streams,
    )
    avatar = load_avatar()
    audio = as_webrtc_audio(looped_speech(args.seconds))
    print(
        f"stages: {args.seconds:g} s of speech, {setup.backend} generator width {setup.generator_width}, "
        f"{args.codec} at {args.size} px ...",
        flush=True,
    )
    frames = measure(generator, au_backend, avatar, audio, fps=args.fps, size_px=args.size, codec=args.codec)
    frames = frames[args.warmup_frames :]
    if not frames:
        raise ValueError("no frame left after the warm-up: give more --seconds or fewer --warmup-frames")
    per_stage = {stage: percentiles([f.get(stage, 0.0) for f in frames]) for stage in STAGES}
    per_stage["total"] = percentiles([sum(f.values()) for f in frames])
    budget = [_budget_row(line.label, line.stages, line.budget_ms, frames) for line in COMPUTE_BUDGET]
    rows = [[stage, s["p50"], s["p95"], s["p99"], s["mean"]] for stage, s in per_stage.items()]
    rows += [
        [f"[budget] {b['label']}", b["p50_ms"], b["p95_ms"], b["p99_ms"], f"<= {b['budget_ms']:g}"] for b in budget
    ]
    results = {"frames": len(frames), "stages_ms": per_stage, "budget": budget}
    targets = [
        Target(f"p50 {b['label']}", f"<= {b['budget_ms']:g} ms", b["p50_ms"], b["p50_ms"] <= b["budget_ms"])
        for b in budget
    ]
    return Report(
        scenario=NAME,
        smoke=args.smoke,
        config={
            "seconds": args.seconds,
            "fps": args.fps,
            "size_px": args.size,
            "codec": args.codec,
            "warmup_frames": args.warmup_frames,
            "input": f"{WEBRTC_RATE_HZ} Hz stereo s16, {PACKET_MS} ms packets",
        },
        setup=setup.as_dict(),
        results=results,
        headers=["stage", "p50 ms", "p95 ms", "p99 ms", "mean ms / budget"],
        rows=rows,
        targets=targets,
        plot=lambda path: _plot(per_stage, budget, path),
    )


def measure(
    generator: GeneratorBackend,
    au_backend: AUStepBackend,
    avatar: Avatar,
    audio: np.ndarray,
    *,
    fps: int,
    size_px: int,
    codec: str,
) -> list[dict[str, float]]:
    """Run ``audio`` ((n, 2) int16 at 48 kHz) through the pipeline; per frame, ms per stage."""
    session = Session(au_backend, fps=fps, input_rate_hz=WEBRTC_RATE_HZ, channels=2)
    renderer = Renderer(generator)
    height, width = avatar.portrait.shape[:2]
    formatter = PictureFormatter(portrait_height_px=height, portrait_width_px=width, output_size_px=size_px)
    encoder = FAST_ENCODERS[codec]()
    timer = StageTimer()
    probes = [
        Probe("ingest", AudioConverter, "push"),
        Probe("mel", StreamingLogMel, "push"),
        Probe("au_model", au_backend, "step"),
        Probe("generator", generator, "run"),
        Probe("compose", Avatar, "compose"),
        Probe("i420", PictureFormatter, "__call__"),
        Probe("encode", encoder, "encode"),
    ]
    packet = WEBRTC_RATE_HZ * PACKET_MS // 1000
    frames: list[dict[str, float]] = []
    audio_ms: dict[str, float] = {}
    with probed(timer, probes):
        for start in range(0, audio.shape[0] - packet + 1, packet):
            completed = session.push_audio(audio[start : start + packet])
            audio_ms = _add(audio_ms, timer.take())
            if not completed:
                continue
            share = {stage: ms / len(completed) for stage, ms in audio_ms.items()}
            audio_ms = {}
            for au_frame in completed:
                video = renderer.render([RenderRequest(avatar, au_frame)])[0]
                picture = formatter(video)
                picture.pts = video.index * VIDEO_CLOCK_RATE_HZ // fps
                picture.time_base = VIDEO_TIME_BASE
                encoder.encode(picture, False)
                frames.append(_add(share, timer.take()))
    return frames


def _add(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {key: a.get(key, 0.0) + b.get(key, 0.0) for key in a.keys() | b.keys()}


def _budget_row(
    label: str, stages: tuple[str, ...], budget_ms: float, frames: list[dict[str, float]]
) -> dict[str, Any]:
    """Percentiles of the per-frame sum of ``stages`` (ms), beside the budget."""
    totals = percentiles([sum(f.get(stage, 0.0) for stage in stages) for f in frames])
    return {
        "label": label,
        "stages": list(stages),
        "budget_ms": budget_ms,
        "p50_ms": totals["p50"],
        "p95_ms": totals["p95"],
        "p99_ms": totals["p99"],
    }


def _plot(per_stage: dict[str, dict[str, Any]], budget: list[dict[str, Any]], path: Path) -> None:
    """Stacked bars: measured p50 per stage, grouped by budget line, beside each line's budget."""
    figure = new_figure(9, 4.8)
    axes = figure.add_subplot()
    groups = [(b["label"], b["stages"], b["budget_ms"]) for b in budget]
    covered = {stage for _, stages, _ in groups for stage in stages}
    groups.append(("ingest + mel (no compute budget)", [s for s in STAGES if s not in covered], None))
    colours = {stage: f"C{i}" for i, stage in enumerate(STAGES)}
    for x, (_, stages, budget_ms) in enumerate(groups):
        bottom = 0.0
        for stage in stages:
            value = per_stage[stage]["p50"] or 0.0
            axes.bar(x - 0.2, value, width=0.38, bottom=bottom, color=colours[stage], label=stage)
            bottom += value
        if budget_ms is not None:
            axes.bar(
                x + 0.2,
                budget_ms,
                width=0.38,
                color="none",
                edgecolor="black",
                hatch="//",
                label="budget (ARCHITECTURE.md)",
            )
    handles, labels = axes.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    axes.legend(unique.values(), unique.keys(), fontsize=8, loc="upper right")
    axes.set_xticks(range(len(groups)), [label.replace(" + ", "\n+ ", 1) for label, _, _ in groups], fontsize=8)
    axes.set_ylabel("ms per frame (p50)")
    axes.set_title(f"Per-frame cost by stage, p50 (total p50 {per_stage['total']['p50']:.1f} ms)")
    save(figure, path)
