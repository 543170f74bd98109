"""``throughput``: how many 25 fps sessions fit, per backend and generator width, batched or not.

Sessions are simulated in process on the server's own parts
(``bench/session_sim.py``): paced audio feeders, the shared AU worker, the
render scheduler, I420 conversion and VP8 encoding per session. Why not real
clients: on a 2-core machine, N aiortc clients (Opus encoding, VP8 decoding
at 25 fps each) would take CPU from the server they measure, and the count
would say more about the clients than about the engine. What the simulation
leaves out (Opus decoding, RTP, DTLS, about 1 ms per 20 ms packet per
session) makes its counts an upper bound; ``e2e`` measures one real session.

Generators: random ones of each ``--widths`` value (timing does not depend
on the weights), and with ``default`` among them the one ``avatar serve``
loads by default (the shipped weights, their int8 build on OpenVINO). For
each backend, generator and batching mode (``max_batch`` 8, the server's
default on a GPU, or 1, its default on a CPU), sessions go up from 1 until more than ``MAX_LATE_RATE`` of
the frames due are late or skipped; the largest count that stayed within it
is the result. Each backend runs as ``avatar serve`` would run it by default
(precision, threads, streams: ``engine.backends.selection.default_options``),
unless ``--precision`` / ``--threads`` / ``--streams`` say otherwise.
"""

import argparse
import asyncio
from pathlib import Path
from typing import Any

from matplotlib.ticker import MaxNLocator

from bench.models import ModelSetup, add_runtime_arguments, build_backends, generator_source
from bench.plots import new_figure, save
from bench.report import Report, Target
from bench.session_sim import SimSettings, run_sessions
from bench.speech import as_webrtc_audio, looped_speech
from bench.targets import MAX_LATE_RATE, MIN_SESSIONS
from engine.avatar import load_avatar
from engine.backends import BACKENDS, DEFAULT_BACKEND
from engine.backends.model_files import cache_dir
from engine.backends.selection import default_max_batch
from engine.server.config import ServerConfig

NAME = "throughput"
DEFAULT_GENERATOR = "default"
SUMMARY = "largest number of concurrent 25 fps sessions with <= 1% late frames, per backend, generator, batching"
SERVER_DEFAULTS = ServerConfig()


def add_arguments(parser: argparse.ArgumentParser, *, smoke: bool) -> None:
    parser.add_argument(
        "--backends",
        nargs="+",
        choices=sorted(BACKENDS),
        default=[DEFAULT_BACKEND] if smoke else [DEFAULT_BACKEND, "onnxruntime", "torch"],
        help="runtimes (default: %(default)s)",
    )
    parser.add_argument(
        "--widths",
        type=_width,
        nargs="+",
        default=[8] if smoke else [32, 16],
        help="generator conv_dim values of random generators, or 'default' for the server's default generator "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--max-batches",
        type=int,
        nargs="+",
        default=[default_max_batch("tensorrt"), 1],
        help="scheduler max_batch values: batched across sessions (the GPU default), and not "
        "(the CPU default) (default: %(default)s)",
    )
    parser.add_argument(
        "--min-sessions",
        type=int,
        default=1,
        help="start there (e.g. --min-sessions 4 --max-sessions 4 for one count, to profile) (default: %(default)s)",
    )
    parser.add_argument(
        "--max-sessions",
        type=int,
        default=2 if smoke else 12,
        help="stop there even if every frame is on time (default: %(default)s)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=1.5 if smoke else 20.0,
        help="measured seconds per session count (default: %(default)s)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=0.5 if smoke else 3.0,
        help="seconds run before measuring, per session count (default: %(default)s)",
    )
    parser.add_argument("--fps", type=int, default=25, help="frame rate of every session (default: 25)")
    parser.add_argument(
        "--size", type=int, default=256 if smoke else 512, help="output video size, px (default: %(default)s)"
    )
    add_runtime_arguments(parser.add_argument_group("runtime (--precision and --streams apply to openvino)"))


def _width(text: str) -> int | None:
    """A ``--widths`` value: a conv_dim, or None for ``default`` (the server's default generator)."""
    if text == DEFAULT_GENERATOR:
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a width (an integer) or '{DEFAULT_GENERATOR}', got {text!r}"
        ) from None


def _generator_label(width: int | None) -> str:
    return DEFAULT_GENERATOR if width is None else f"random w{width}"


def run(args: argparse.Namespace) -> Report:
    avatar = load_avatar()
    audio = as_webrtc_audio(looped_speech(30.0))
    settings = SimSettings(fps=args.fps, size_px=args.size, seconds=args.seconds, warmup_s=args.warmup)
    points: list[dict[str, Any]] = []
    setups: dict[str, ModelSetup] = {}
    for backend in args.backends:
        for width in args.widths:
            label = _generator_label(width)
            generator, au_backend, setup = build_backends(
                backend,
                generator_source(width, cache_dir() / "bench"),
                precision=args.precision if backend == "openvino" else None,
                threads=args.threads,
                streams=args.streams if backend == "openvino" else None,
            )
            setups[backend] = setup
            for max_batch in args.max_batches:
                for sessions in range(args.min_sessions, args.max_sessions + 1):
                    outcome = asyncio.run(
                        run_sessions(
                            sessions,
                            generator=generator,
                            au_backend=au_backend,
                            avatar=avatar,
                            audio=audio,
                            max_batch=max_batch,
                            batch_window_ms=SERVER_DEFAULTS.batch_window_ms,
                            settings=settings,
                        )
                    )
                    points.append(
                        {
                            "backend": backend,
                            "precision": setup.precision,
                            "threads": setup.threads,
                            "streams": setup.streams,
                            "generator": label,
                            "width": setup.generator_width,
                            "max_batch": max_batch,
                            "sessions": sessions,
                            **vars(outcome),
                            "late_rate": outcome.late_rate,
                        }
                    )
                    print(
                        f"  {backend} {setup.precision} {setup.streams}x{setup.threads} threads {label} "
                        f"max_batch {max_batch}: {sessions} sessions, "
                        f"{outcome.late_rate:.1%} late ({outcome.due} due, mean batch {outcome.mean_batch:.1f})",
                        flush=True,
                    )
                    if outcome.late_rate > MAX_LATE_RATE:
                        break
    summary = _summary(points)
    # judged on the generator users get when it was run, else on the smallest (fastest) random one
    judged = _generator_label(None if None in args.widths else min(args.widths))
    best = max(
        (s["max_sessions_ok"] for s in summary if s["backend"] == DEFAULT_BACKEND and s["generator"] == judged),
        default=None,
    )
    targets = [
        Target(
            f"25 fps sessions, {DEFAULT_BACKEND}, {judged} generator, <= {MAX_LATE_RATE:.0%} late",
            f">= {MIN_SESSIONS}",
            best,
            None if best is None else best >= MIN_SESSIONS,
        )
    ]
    return Report(
        scenario=NAME,
        smoke=args.smoke,
        config={
            "seconds": args.seconds,
            "warmup_s": args.warmup,
            "fps": args.fps,
            "size_px": args.size,
            "min_sessions": args.min_sessions,
            "max_sessions": args.max_sessions,
            "max_late_rate": MAX_LATE_RATE,
            "sessions": "in-process simulation on the server's parts (bench/session_sim.py)",
        },
        setup={
            "backend": args.backends,
            "generator": [_generator_label(width) for width in args.widths],
            "generator_width": list(dict.fromkeys(point["width"] for point in points)),
            **{
                field: {name: getattr(setup, field) for name, setup in setups.items()}
                for field in ("precision", "threads", "streams")
            },
        },
        results={"points": points, "summary": summary},
        headers=[
            "backend",
            "generator",
            "width",
            "max_batch",
            "sessions ok",
            "late at ok",
            "late at next",
            "mean batch at ok",
        ],
        rows=[
            [
                s["backend"],
                s["generator"],
                s["width"],
                s["max_batch"],
                s["max_sessions_ok"],
                s["late_rate_at_ok"],
                s["late_rate_next"],
                s["mean_batch_at_ok"],
            ]
            for s in summary
        ],
        targets=targets,
        plot=lambda path: _plot(points, path),
    )


def _series(points: list[dict[str, Any]]) -> dict[tuple[str, str, int], list[dict[str, Any]]]:
    """The points of each (backend, generator, max_batch), in the order they were run."""
    series: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for point in points:
        series.setdefault((point["backend"], point["generator"], point["max_batch"]), []).append(point)
    return series


def _summary(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (backend, generator, max_batch): the most sessions within the late limit, and the rates around it."""
    summary = []
    for (backend, generator, max_batch), series in _series(points).items():
        ok = [p for p in series if p["late_rate"] <= MAX_LATE_RATE]
        best = ok[-1] if ok else None
        following = next((p for p in series if best is None or p["sessions"] == best["sessions"] + 1), None)
        summary.append(
            {
                "backend": backend,
                "generator": generator,
                "width": series[0]["width"],
                "max_batch": max_batch,
                "max_sessions_ok": best["sessions"] if best else 0,
                "late_rate_at_ok": best["late_rate"] if best else None,
                "late_rate_next": following["late_rate"] if following else None,
                "mean_batch_at_ok": best["mean_batch"] if best else None,
            }
        )
    return summary


def _plot(points: list[dict[str, Any]], path: Path) -> None:
    """Late-frame rate against sessions: a colour per backend and generator, solid batched, dashed not; the limit
    dotted."""
    figure = new_figure(9, 5)
    axes = figure.add_subplot()
    by_config = _series(points)
    models = list(dict.fromkeys((backend, generator) for backend, generator, _ in by_config))
    for (backend, generator, max_batch), series in by_config.items():
        axes.plot(
            [p["sessions"] for p in series],
            [100 * p["late_rate"] for p in series],
            "o-" if max_batch > 1 else "s--",
            color=f"C{models.index((backend, generator))}",
            label=f"{backend} {generator} max_batch {max_batch}",
        )
    axes.axhline(100 * MAX_LATE_RATE, color="black", linestyle=":", linewidth=1, label=f"{MAX_LATE_RATE:.0%} limit")
    axes.set_yscale("symlog", linthresh=1.0)
    axes.set_ylim(bottom=0.0)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("concurrent sessions at 25 fps")
    axes.set_ylabel("late or skipped frames, %")
    axes.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    axes.set_title("Sessions vs late frames")
    save(figure, path)
