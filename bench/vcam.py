"""``vcam``: latency from an input sample to the virtual-camera frame showing it, inside ``avatar live``.

``avatar live`` runs in this process as a user runs it (``engine.cli.main``),
fed a WAV file of paused speech (``--phrase`` seconds of the built-in sample
after ``--silence`` seconds of silence, for ``--seconds``), which its reader
releases at real-time pace in 20 ms chunks, each stamped as it is released
(``engine.live.sources.file_chunks``), as a microphone's blocks are. The camera
is a pyvirtualcam backend that records when each frame was written
(``bench/recording_camera.py``: the v4l2loopback kernel module cannot load
here), opened in ``--camera-format`` as its native pixel format. The frames'
traces are read from the session while it runs (``bench/cli_session.py``).

Per rendered frame: latency = the frame handed to the camera (its
``camera.send`` returned) minus the arrival of the input chunk holding the
audio sample it shows, split at each hand-over (``bench.cli_session.SEGMENTS``).
Pacing: every frame the camera got (rendered ones and repeats of the last
picture), frames per second over the run and the gaps between writes.
"""

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

import engine.cli.live
from bench.cli_session import SEGMENTS, SentFrame, SessionLog, sent_frames, watching
from bench.e2e import add_speech_arguments, stream_config
from bench.models import add_model_arguments, generator_source, model_setup
from bench.plots import new_figure, save
from bench.report import PERCENTILE_HEADERS, Report, at_most, percentile_cells, percentiles
from bench.server_process import model_arguments
from bench.speech import paused_speech, wav_bytes
from bench.targets import VCAM_LATENCY_P50_MS, VCAM_LATENCY_P95_MS
from engine.backends.model_files import cache_dir
from engine.cli.main import main as avatar

NAME = "vcam"
SUMMARY = "avatar live fed a file at real-time pace: input sample -> frame handed to the virtual camera; pacing"


def add_arguments(parser: argparse.ArgumentParser, *, smoke: bool) -> None:
    add_speech_arguments(parser, seconds=5.0 if smoke else 60.0)
    parser.add_argument(
        "--size", type=int, default=128 if smoke else 512, help="picture size, px (default: %(default)s)"
    )
    parser.add_argument("--fps", type=int, default=25, help="camera frame rate (default: 25)")
    parser.add_argument(
        "--camera-format",
        default="I420",
        help="the camera's native pixel format, as pyvirtualcam names it (I420, NV12, RGB, ...): the one avatar "
        "live converts to (default: I420, v4l2loopback's)",
    )
    add_model_arguments(parser, default_width=8 if smoke else None)


def run(args: argparse.Namespace) -> Report:
    from bench.recording_camera import BACKEND, recording_camera  # needs the vcam extra (pyvirtualcam)

    speech = paused_speech(args.seconds, silence_s=args.silence, phrase_s=args.phrase)
    generator = generator_source(args.width, cache_dir() / "bench")
    setup = model_setup(
        args.backend, generator, precision=args.precision, threads=args.threads, streams=args.streams, serving=False
    )
    log = SessionLog()
    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "speech.wav"
        wav.write_bytes(wav_bytes(speech.audio))
        command = ["live", "--input", str(wav), "--camera-backend", BACKEND, "--fps", str(args.fps)]
        command += ["--size", str(args.size), "--stats-interval", "0", *model_arguments(setup, generator)]
        print(f"vcam: avatar {' '.join(command)}", flush=True)
        with recording_camera(args.camera_format, keep_frames=False) as camera, watching(engine.cli.live, log):
            status = avatar(command)
    if status != 0:
        raise RuntimeError(f"avatar live exited with status {status}")
    frames = sent_frames(log)
    if not frames or len(camera.times_s) < 2:
        raise RuntimeError("the camera got no rendered frame")
    results = _results(frames, np.asarray(camera.times_s), args.fps)
    results["camera_format"] = camera.opened_formats[-1].strip()
    latency, gaps = results["latency_ms"], results["camera"]["gap_ms"]
    rows = [
        ["latency (sample arrived -> frame handed to the camera)", *percentile_cells(latency)],
        *[[f"  {name}", *percentile_cells(results["segments_ms"][name])] for name in SEGMENTS],
        [
            f"camera: gap between frames ({results['camera']['fps']:.1f} fps, "
            f"{results['camera']['rendered_share']:.0%} rendered)",
            *percentile_cells(gaps),
        ],
    ]
    targets = [
        at_most("vcam latency p50", VCAM_LATENCY_P50_MS, latency["p50"]),
        at_most("vcam latency p95", VCAM_LATENCY_P95_MS, latency["p95"]),
    ]
    return Report(
        scenario=NAME,
        smoke=args.smoke,
        config={**stream_config(args), "camera_format": args.camera_format, "input": "WAV file, paced 20 ms chunks"},
        setup=setup.as_dict(),
        results=results,
        headers=PERCENTILE_HEADERS,
        rows=rows,
        targets=targets,
        plot=lambda path: _plot(frames, np.asarray(camera.times_s), args.fps, path),
    )


def _results(frames: list[SentFrame], camera_s: np.ndarray, fps: int) -> dict[str, Any]:
    """Latency and its segments per rendered frame; the camera's rate and gaps."""
    span_s = float(camera_s[-1] - camera_s[0])
    return {
        "latency_ms": percentiles([f.latency_ms for f in frames]),
        "segments_ms": {name: percentiles([f.segments_ms()[name] for f in frames]) for name in SEGMENTS},
        "engine_latency_ms": percentiles([(f.send_s - f.audio_arrival_s) * 1e3 for f in frames]),
        "frames_rendered": len(frames),
        "camera": {
            "frames": int(camera_s.size),
            "seconds": span_s,
            "fps": (camera_s.size - 1) / span_s,
            "rendered_share": len(frames) / camera_s.size,
            "gap_ms": percentiles(np.diff(camera_s) * 1e3),
            "gaps_over_1_5_intervals": int((np.diff(camera_s) > 1.5 / fps).sum()),
        },
        "latency_series_ms": [round(f.latency_ms, 2) for f in frames],
    }


def _plot(frames: list[SentFrame], camera_s: np.ndarray, fps: int, path: Path) -> None:
    """Left: CDF of the latency and of each segment, with the targets; right: the camera's gaps over the run."""
    figure = new_figure(11, 4.5)
    cdf, pacing = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    series = [("sample arrived -> camera", [f.latency_ms for f in frames])]
    series += [(name, [f.segments_ms()[name] for f in frames]) for name in SEGMENTS]
    for label, values in series:
        ordered = np.sort(values)
        cdf.step(ordered, np.arange(1, ordered.size + 1) / ordered.size, where="post", label=label)
    for target, style in ((VCAM_LATENCY_P50_MS, ":"), (VCAM_LATENCY_P95_MS, "--")):
        cdf.axvline(target, color="black", linestyle=style, linewidth=1)
    cdf.set_xlabel(f"ms (targets: p50 {VCAM_LATENCY_P50_MS:g}, p95 {VCAM_LATENCY_P95_MS:g})")
    cdf.set_ylabel("fraction of rendered frames")
    cdf.legend(fontsize=8, loc="lower right")
    cdf.set_title("Input sample -> virtual camera, CDF")
    pacing.plot(camera_s[1:] - camera_s[0], np.diff(camera_s) * 1e3, ".", markersize=2)
    pacing.axhline(1000 / fps, color="grey", linewidth=0.5)
    pacing.set_xlabel("seconds since the camera's first frame")
    pacing.set_ylabel("gap since the previous frame, ms")
    pacing.set_title(f"Camera pacing ({fps} fps)")
    save(figure, path)
