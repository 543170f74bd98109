"""``pipecat``: the Pipecat avatar service over a long conversation: first frame after each utterance's TTS audio,
and whether the re-timed audio drifts from the frames (10 minutes by default).

``AvatarVideoService`` (``engine.integrations.pipecat``) runs in a real Pipecat
pipeline in this process (a ``PipelineWorker``, as pipecat's own harness runs
one), between a source that plays a TTS service and a sink that stamps every
frame reaching the end of the pipeline (``time.perf_counter()``). Every
``--silence`` + ``--phrase`` seconds of wall time the source queues one
utterance: ``--phrase`` seconds of the built-in speech sample as 16-bit mono
24 kHz ``TTSAudioRawFrame``s of 40 ms, all at once, faster than real time, as
TTS services deliver them; between utterances the service renders the idle
face from silence.

What is measured, from the frames that come out:

- first frame: per utterance, when the first image showing its first re-timed
  audio frame's start left the service minus when its first TTS frame entered
  the pipeline, ms (the issue's target is about this for the first utterance;
  every utterance is one more sample of it);
- A/V gap: per re-timed audio frame, the instant shown by the image just
  before it (both on the avatar's 16 kHz audio clock) minus the audio frame's
  start, ms: 0 to one frame interval when the audio follows its picture;
- clock: per image, when it left minus the instant it shows (its 16 kHz sample
  / 16,000) plus a constant: how far the avatar's timeline lags the wall
  clock, ms; and the rate of that timeline against the wall clock (the slope
  of a line fitted to the images' shown instant against their departure,
  parts per million);
- frame rate of the images, and whether every byte of TTS audio came out;
- this process's resident memory every ``--rss-every`` seconds.

Start and end are the first and last ``--window`` seconds. The A/V gap or the
timeline's lag grew if its end p50 exceeds its start p50 by more than
``bench.drift.GROWTH_LIMIT_MS``; memory grew if a line fitted after the first
window rises faster than ``bench.drift.RSS_LIMIT_MB_PER_MIN``.
"""

import argparse
import asyncio
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.drift import GROWTH_LIMIT_MS, RSS_LIMIT_MB_PER_MIN, growth_ms, rss_trend, start_end
from bench.models import ModelSetup, add_model_arguments, generator_source, model_setup
from bench.plots import new_figure, save
from bench.report import Report, at_least, at_most, percentiles
from bench.server_process import rss_mb
from bench.speech import looped_speech
from bench.targets import PIPECAT_FIRST_FRAME_MS
from engine.backends.model_files import ModelSource, cache_dir, onnx_file, resolve_source
from engine.pipeline import SAMPLE_RATE_HZ

NAME = "pipecat"
SUMMARY = "AvatarVideoService in a Pipecat pipeline: first frame after each utterance; re-timed audio vs frames drift"
TTS_RATE_HZ = 24_000
"""Pipecat's default output rate, what its TTS services produce."""
TTS_FRAME_MS = 40
"""Audio per TTS frame, ms."""
UTTERANCE_GAP_SAMPLES = 320
"""A re-timed audio frame starting more than this (16 kHz samples: one 20 ms chunk) after the previous one ended
begins a new utterance."""


@dataclass
class Recorded:
    """What reached the end of the pipeline; times are ``time.perf_counter()`` seconds.

    utterances_s: when each utterance's first TTS frame was queued.
    images: (left, shown sample) per image. audio: (left, start sample, bytes) per re-timed audio frame.
    rss: (time, MiB) of this process.
    """

    utterances_s: list[float] = field(default_factory=list)
    images: list[tuple[float, int]] = field(default_factory=list)
    audio: list[tuple[float, int, int]] = field(default_factory=list)
    rss: list[tuple[float, float]] = field(default_factory=list)
    tts_bytes: int = 0


def add_arguments(parser: argparse.ArgumentParser, *, smoke: bool) -> None:
    parser.add_argument(
        "--minutes",
        type=float,
        default=0.25 if smoke else 10.0,
        help="conversation length, minutes (default: %(default)s)",
    )
    parser.add_argument(
        "--window",
        type=float,
        default=3.0 if smoke else 60.0,
        help="seconds at the start and at the end compared for growth (default: %(default)s)",
    )
    parser.add_argument(
        "--rss-every",
        type=float,
        default=1.0 if smoke else 5.0,
        help="seconds between two reads of this process's memory (default: %(default)s)",
    )
    parser.add_argument("--silence", type=float, default=2.0, help="pause before each utterance, s (default: 2.0)")
    parser.add_argument("--phrase", type=float, default=3.0, help="each utterance's speech, s (default: 3.0)")
    parser.add_argument("--fps", type=int, default=25, help="avatar frame rate (default: 25)")
    add_model_arguments(parser, default_width=8 if smoke else None)


def run(args: argparse.Namespace) -> Report:
    seconds = args.minutes * 60.0
    if seconds < 2 * args.window:
        raise ValueError(f"--minutes must give at least two --window of {args.window:g} s")
    generator = generator_source(args.width, cache_dir() / "bench")
    setup = model_setup(
        args.backend, generator, precision=args.precision, threads=args.threads, streams=args.streams, serving=False
    )
    recorded = asyncio.run(_converse(args, setup, generator, seconds))
    results = _results(recorded, args)
    return _report(args, setup, results)


# -- the run -----------------------------------------------------------------------------------------


def tts_frames(seconds: float) -> list[Any]:
    """``seconds`` of the speech sample as a TTS service delivers it: s16 mono at 24 kHz, 40 ms a frame."""
    from pipecat.frames.frames import TTSAudioRawFrame

    speech_16k = looped_speech(seconds + 0.01)
    times = np.arange(int(seconds * TTS_RATE_HZ)) / TTS_RATE_HZ
    speech = np.interp(times * SAMPLE_RATE_HZ, np.arange(speech_16k.size), speech_16k)
    pcm = (np.clip(speech, -1, 1) * 32767).astype("<i2").tobytes()
    step = TTS_RATE_HZ * TTS_FRAME_MS // 1000 * 2
    return [
        TTSAudioRawFrame(audio=pcm[i : i + step], sample_rate=TTS_RATE_HZ, num_channels=1)
        for i in range(0, len(pcm), step)
    ]


async def _converse(args: argparse.Namespace, setup: ModelSetup, generator: ModelSource, seconds: float) -> Recorded:
    """Build the parts, run the pipeline for ``seconds`` of utterances and pauses, return what came out."""
    from loguru import logger
    from pipecat.frames.frames import EndFrame, Frame, OutputImageRawFrame, TTSAudioRawFrame
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
    from pipecat.workers.runner import WorkerRunner

    from engine.integrations.pipecat import SHOWN_SAMPLE_KEY, START_SAMPLE_KEY, AvatarVideoService
    from engine.live.build import PartsSettings, build_parts, running_parts

    logger.remove()  # pipecat logs every link and state change at DEBUG: keep its warnings only
    logger.add(sys.stderr, level="WARNING")
    recorded = Recorded()

    class Sink(FrameProcessor):
        """Stamps the images and the re-timed audio as they reach the end of the pipeline."""

        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            now_s = time.perf_counter()
            if isinstance(frame, OutputImageRawFrame):
                recorded.images.append((now_s, int(frame.metadata[SHOWN_SAMPLE_KEY])))
            elif isinstance(frame, TTSAudioRawFrame):
                recorded.audio.append((now_s, int(frame.metadata[START_SAMPLE_KEY]), len(frame.audio)))
            await self.push_frame(frame, direction)

    torch_weights = setup.backend == "torch"
    settings = PartsSettings(
        backend=setup.backend,
        precision=setup.precision,
        threads=setup.threads,
        streams=setup.streams,
        serving=False,
        generator_path=generator.path if torch_weights else onnx_file(generator),
        cause_path=None if torch_weights else onnx_file(resolve_source("cause", None)),
    )
    utterance = tts_frames(args.phrase)
    cycle_s = args.silence + args.phrase
    async with running_parts(build_parts(settings).parts) as parts:
        service = AvatarVideoService(parts, fps=args.fps)
        worker = PipelineWorker(
            Pipeline([service, Sink()]),
            cancel_on_idle_timeout=False,
            params=PipelineParams(audio_out_sample_rate=TTS_RATE_HZ),
        )
        started = asyncio.Event()

        @worker.event_handler("on_pipeline_started")
        async def _on_started(*_: Any) -> None:
            started.set()

        async def speak() -> None:
            await asyncio.wait_for(started.wait(), timeout=60.0)
            begin_s = time.perf_counter()
            next_rss_s = begin_s
            print(f"pipecat: {seconds:g} s of utterances ({args.phrase:g} s each, {args.silence:g} s apart) ...")
            for k in range(int(seconds // cycle_s)):
                speak_at_s = begin_s + k * cycle_s + args.silence
                while (now_s := time.perf_counter()) < speak_at_s:
                    if now_s >= next_rss_s:
                        recorded.rss.append((now_s, rss_mb(os.getpid())))
                        next_rss_s += args.rss_every
                    await asyncio.sleep(min(speak_at_s, next_rss_s) - now_s)
                recorded.utterances_s.append(time.perf_counter())
                for frame in utterance:
                    await worker.queue_frame(frame)
                    recorded.tts_bytes += len(frame.audio)
            await asyncio.sleep(args.phrase + 1.0)  # the last utterance plays out
            recorded.rss.append((time.perf_counter(), rss_mb(os.getpid())))
            await worker.queue_frame(EndFrame())

        runner = WorkerRunner()
        await runner.add_workers(worker)
        await asyncio.gather(runner.run(), speak())
    return recorded


# -- from records to figures -------------------------------------------------------------------------


def first_frames_ms(recorded: Recorded) -> list[tuple[float, float]]:
    """Per utterance: (when its first TTS frame entered, the first image showing its first re-timed audio frame
    left minus that, ms). Utterances are told apart by gaps in the re-timed audio's start samples."""
    firsts: list[int] = []
    end = None
    for _, start, size in recorded.audio:
        if end is None or start > end + UTTERANCE_GAP_SAMPLES:
            firsts.append(start)
        end = start + size // 2 * SAMPLE_RATE_HZ // TTS_RATE_HZ
    if len(firsts) != len(recorded.utterances_s):
        raise RuntimeError(f"{len(recorded.utterances_s)} utterances sent, {len(firsts)} came out")
    left = np.asarray([t for t, _ in recorded.images])
    shown = np.asarray([s for _, s in recorded.images])
    latencies = []
    for sent_s, first in zip(recorded.utterances_s, firsts):
        showing = np.flatnonzero(shown >= first)
        if showing.size:
            latencies.append((sent_s, (left[showing[0]] - sent_s) * 1e3))
    return latencies


def _results(recorded: Recorded, args: argparse.Namespace) -> dict[str, Any]:
    if not recorded.images or not recorded.audio or not recorded.utterances_s:
        raise RuntimeError("no image or no re-timed audio came out of the service")
    begin_s = recorded.utterances_s[0] - args.silence
    left = np.asarray([t for t, _ in recorded.images])
    shown_s = np.asarray([s for _, s in recorded.images]) / SAMPLE_RATE_HZ
    lag_s = left - shown_s
    lag = [(t - begin_s, (v - lag_s.min()) * 1e3) for t, v in zip(left, lag_s)]
    gaps = []
    image = 0
    for audio_left, start, _ in recorded.audio:  # the image just before: the last one that left before it
        while image + 1 < left.size and left[image + 1] <= audio_left:
            image += 1
        gaps.append((audio_left - begin_s, (recorded.images[image][1] - start) / SAMPLE_RATE_HZ * 1e3))
    span_s = float(left[-1] - begin_s)
    slope = float(np.polyfit(left - left[0], shown_s - shown_s[0], 1)[0])
    first = [(t - begin_s, ms) for t, ms in first_frames_ms(recorded)]
    first_ms = [ms for _, ms in first]
    audio_bytes = sum(size for _, _, size in recorded.audio)
    results: dict[str, Any] = {
        "seconds": span_s,
        "utterances": len(recorded.utterances_s),
        "first_frame_ms": percentiles(first_ms),
        "first_frame_first_utterance_ms": first_ms[0] if first_ms else None,
        "av_gap_ms": percentiles([v for _, v in gaps]),
        "av_gap_edges_ms": start_end(gaps, args.window, span_s),
        "timeline_lag_edges_ms": start_end(lag, args.window, span_s),
        "timeline_rate_ppm": (slope - 1.0) * 1e6,
        "images": len(recorded.images),
        "fps": (left.size - 1) / float(left[-1] - left[0]),
        "audio_bytes_in": recorded.tts_bytes,
        "audio_bytes_out": audio_bytes,
        "rss_mb": rss_trend([(t - begin_s, mb) for t, mb in recorded.rss], args.window),
        "first_frame_series": [[round(t, 3), round(v, 2)] for t, v in first],
        "av_gap_series": [[round(t, 3), round(v, 2)] for t, v in gaps],
        "lag_series": [[round(t, 3), round(v, 2)] for t, v in lag[:: max(1, len(lag) // 5000)]],
    }
    results["av_gap_growth_ms"] = growth_ms(results["av_gap_edges_ms"])
    results["timeline_lag_growth_ms"] = growth_ms(results["timeline_lag_edges_ms"])
    return results


# -- report ------------------------------------------------------------------------------------------


def _report(args: argparse.Namespace, setup: ModelSetup, results: dict[str, Any]) -> Report:
    gap_edges, lag_edges = results["av_gap_edges_ms"], results["timeline_lag_edges_ms"]
    first = results["first_frame_ms"]
    rows = [
        ["first frame after an utterance's first TTS frame, ms", first["p50"], first["p95"], first["max"], first["n"]],
        ["A/V gap (shown instant - audio start), ms", *_edge_cells(gap_edges)],
        ["timeline lag (left - shown instant, + const), ms", *_edge_cells(lag_edges)],
        ["images a second", results["fps"], None, None, results["images"]],
        ["TTS audio out / in, bytes", results["audio_bytes_out"], results["audio_bytes_in"], None, None],
    ]
    slope = results["rss_mb"]["slope_mb_per_min"]
    targets = [
        at_most("first frame after the first TTS audio frame", PIPECAT_FIRST_FRAME_MS,
                results["first_frame_first_utterance_ms"]),
        at_most("first frame after an utterance's first TTS audio frame, p95", PIPECAT_FIRST_FRAME_MS, first["p95"]),
        at_most("A/V gap growth, end p50 - start p50", GROWTH_LIMIT_MS, results["av_gap_growth_ms"]),
        at_most("timeline lag growth, end p50 - start p50", GROWTH_LIMIT_MS, results["timeline_lag_growth_ms"]),
        at_least("TTS audio out / in", 1.0, results["audio_bytes_out"] / max(results["audio_bytes_in"], 1), "x"),
        at_most("process RSS slope after the first window", RSS_LIMIT_MB_PER_MIN, slope, "MiB/min"),
    ]  # fmt: skip
    rss = results["rss_mb"]
    print(
        f"pipecat: {results['utterances']} utterances, timeline rate {results['timeline_rate_ppm']:+.0f} ppm "
        f"against the wall clock, RSS {rss['start']:.0f} -> {rss['end']:.0f} MiB"
    )
    return Report(
        scenario=NAME,
        smoke=args.smoke,
        config={
            "minutes": args.minutes,
            "window_s": args.window,
            "rss_every_s": args.rss_every,
            "silence_s": args.silence,
            "phrase_s": args.phrase,
            "fps": args.fps,
            "tts": f"s16 mono {TTS_RATE_HZ} Hz, {TTS_FRAME_MS} ms frames, each utterance queued at once",
        },
        setup=setup.as_dict(),
        results=results,
        headers=["measure", "p50 / start p50", "p95 / end p50", "max / growth", "n"],
        rows=rows,
        targets=targets,
        plot=lambda path: _plot(results, args.window, path),
    )


def _edge_cells(edges: dict[str, Any]) -> list[Any]:
    return [edges["start"]["p50"], edges["end"]["p50"], growth_ms(edges), edges["end"]["n"]]


def _plot(results: dict[str, Any], window_s: float, path: Path) -> None:
    """Four panels over the run: first frame per utterance, A/V gap, timeline lag, RSS."""
    figure = new_figure(9, 10)
    first = np.asarray(results["first_frame_series"]).reshape(-1, 2)
    axes = figure.add_subplot(4, 1, 1)
    axes.plot(first[:, 0] / 60.0, first[:, 1], ".", markersize=3)
    axes.axhline(PIPECAT_FIRST_FRAME_MS, color="black", linestyle=":", linewidth=1)
    axes.set_ylabel("first frame, ms")
    axes.set_title("Pipecat AvatarVideoService: first frame per utterance, A/V gap, timeline lag, memory")
    panels = (
        ("av_gap_series", "A/V gap, ms (shown - audio start)"),
        ("lag_series", "timeline lag, ms (+ const)"),
    )
    for row, (key, label) in enumerate(panels, start=2):
        series = np.asarray(results[key]).reshape(-1, 2)
        axes = figure.add_subplot(4, 1, row)
        axes.plot(series[:, 0] / 60.0, series[:, 1], ".", markersize=1.5, alpha=0.4)
        axes.set_ylabel(label)
    rss = np.asarray(results["rss_mb"]["series"]).reshape(-1, 2)
    axes = figure.add_subplot(4, 1, 4)
    axes.plot(rss[:, 0] / 60.0, rss[:, 1], "-", linewidth=1)
    axes.set_ylabel("process RSS, MiB")
    for axes in figure.axes:
        axes.axvline(window_s / 60.0, color="grey", linewidth=0.5)
    figure.axes[-1].set_xlabel("minutes since the run began")
    save(figure, path)
