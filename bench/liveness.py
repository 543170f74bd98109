"""``python -m bench.liveness``: what the liveness models do to a conversation, in figures.

Speaks ``--minutes`` of conversation with espeak-ng (sentences with pauses of
0.4-2.5 s between them), runs the session's liveness on its log-mel hops at
25 fps for each seed, and prints: blinks a minute (all, while speaking, in
pauses) and their durations; head motion amplitude (95th percentile and
largest |angle|, speaking and silent); the smoothing's added lag on ramps, on
a step, and on the trained CAUSE's AUs for the built-in sample speech
(cross-correlation peak, 1 ms resolution); and the cost of a frame.
No GPU, a few seconds of CPU.
"""

import argparse
import time

import numpy as np

from engine.au.liveness import Liveness, LivenessSettings
from engine.au.smoothing import OneEuroFilter
from engine.audio import load_audio_file, log_mel
from engine.pipeline import SAMPLE_RATE_HZ, Session
from engine.pipeline.au_estimator import frame_hop

FPS = 25
LOOKAHEAD_HOPS = 2
SENTENCES = (
    "Hello, and thank you for joining the call today.",
    "I wanted to go over the results from last week before we decide anything.",
    "The first thing to notice is that the numbers went up, not down.",
    "That surprised me, to be honest.",
    "We changed the onboarding flow, and people seem to like it much better.",
    "Does anyone have questions so far?",
    "Let me share the second chart, it shows the same thing by region.",
    "Europe grew the most, followed closely by South America.",
    "I think we should keep going in this direction for another month.",
    "If nobody objects, I will write it up and send it around tomorrow.",
)


def conversation(minutes: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """16 kHz audio of sentences and pauses, and a per-frame flag: inside a sentence."""
    from models.data.espeak import synthesize

    spoken = [synthesize(text, voice="en-us").audio for text in SENTENCES]
    rng = np.random.default_rng(seed)
    pieces, flags = [], []
    total = 0
    while total < minutes * 60 * SAMPLE_RATE_HZ:
        speech = spoken[int(rng.integers(len(spoken)))]
        pause = np.zeros(int(rng.uniform(0.4, 2.5) * SAMPLE_RATE_HZ), np.float32)
        pieces += [speech, pause]
        flags += [True] * speech.size + [False] * pause.size
        total += speech.size + pause.size
    samples = np.array(flags)[:: SAMPLE_RATE_HZ // FPS]
    return np.concatenate(pieces), samples


def run_liveness(audio: np.ndarray, seed: int) -> tuple[Liveness, np.ndarray, np.ndarray, float]:
    """Liveness over the whole audio: (model, AUs (n, 17), poses (n, 3), microseconds a frame)."""
    liveness = Liveness(LivenessSettings(seed=seed), fps=FPS)
    liveness.push_hops(log_mel(np.concatenate([audio, np.zeros(8000, np.float32)])))
    n_frames = audio.size * FPS // SAMPLE_RATE_HZ
    aus, poses = [], []
    started = time.perf_counter()
    for n in range(n_frames):
        frame_aus, pose = liveness.frame(
            n, np.zeros(17, np.float32), hops_through=frame_hop(n, FPS) + LOOKAHEAD_HOPS + 1
        )
        aus.append(frame_aus)
        poses.append(pose)
    cost_us = (time.perf_counter() - started) / n_frames * 1e6
    return liveness, np.array(aus), np.array(poses), cost_us


def ramp_lag_ms(speed_per_s: float) -> float:
    smoother = OneEuroFilter(rate_hz=FPS)
    t = np.arange(4 * FPS) / FPS
    out = np.array([smoother(np.array([speed_per_s * s]))[0] for s in t])
    return float(np.mean(speed_per_s * t[-FPS:] - out[-FPS:]) / speed_per_s * 1e3)


def cause_lag_ms() -> list[tuple[str, float]]:
    """Cross-correlation lag of the smoothed against the raw AU stream of the trained CAUSE (sample speech)."""
    from engine.backends import create_backends
    from engine.backends.model_files import resolve_source
    from engine.backends.selection import default_options
    from engine.cli.render import SAMPLE_SPEECH

    _, cause = create_backends(
        "onnxruntime",
        resolve_source("generator", None),
        resolve_source("cause", None),
        default_options("onnxruntime", serving=False),
    )
    audio = load_audio_file(SAMPLE_SPEECH)
    streams = []
    for settings in (LivenessSettings.off(), LivenessSettings(blink=False, head_motion=False, idle=False)):
        session = Session(cause, fps=FPS, liveness=settings)
        streams.append(np.stack([f.aus for f in session.push_audio(audio) + session.finish()]))
    raw, smooth = streams
    fine = np.arange(0, len(raw) - 1, 0.04)  # 1 ms steps at 25 fps
    lags = []
    for name, index in (("AU25", 14), ("AU26", 15), ("AU12", 8)):
        a = np.interp(fine, np.arange(len(raw)), raw[:, index])
        b = np.interp(fine, np.arange(len(smooth)), smooth[:, index])
        a, b = a - a.mean(), b - b.mean()
        scores = [np.dot(a[: len(a) - lag], b[lag:]) for lag in range(0, 80)]
        lags.append((name, float(np.argmax(scores))))
    return lags


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.liveness", description=__doc__)
    parser.add_argument("--minutes", type=float, default=5.0, help="conversation per seed (default 5)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds (default 3)")
    args = parser.parse_args()

    rows = []
    for seed in range(args.seeds):
        audio, speaking = conversation(args.minutes, seed)
        liveness, _, poses, cost_us = run_liveness(audio, seed)
        n = min(len(poses), len(speaking))
        poses, speaking = poses[:n], speaking[:n]
        events = list(liveness.blinks.recent)
        starts = np.array([event.decided_frame for event in events if event.decided_frame < n])
        minutes_speaking, minutes_silent = speaking.sum() / FPS / 60, (~speaking).sum() / FPS / 60
        durations_ms = np.array([event.duration_s for event in events]) * 1e3
        rows.append(
            {
                "seed": seed,
                "blinks/min": len(starts) / (n / FPS / 60),
                "speaking": speaking[starts].sum() / minutes_speaking,
                "pauses": (~speaking[starts]).sum() / minutes_silent,
                "duration ms (min/mean/max)": f"{durations_ms.min():.0f}/{durations_ms.mean():.0f}/"
                f"{durations_ms.max():.0f}",
                "head p95 |deg| speaking (pitch/yaw/roll)": "/".join(
                    f"{v:.1f}" for v in np.percentile(np.abs(poses[speaking]), 95, axis=0)
                ),
                "silent": "/".join(f"{v:.1f}" for v in np.percentile(np.abs(poses[~speaking]), 95, axis=0)),
                "max |deg|": "/".join(f"{v:.1f}" for v in np.abs(poses).max(axis=0)),
                "us/frame": cost_us,
            }
        )
    print(f"conversation: {args.minutes:g} min per seed, espeak-ng en-us, 25 fps")
    for row in rows:
        print("  " + ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
    print("smoothing (one-euro, defaults): ramp lag at 0.01 / 1 / 5 / 20 AU per s: " + " / ".join(
        f"{ramp_lag_ms(speed):.1f}" for speed in (0.01, 1.0, 5.0, 20.0)) + " ms")  # fmt: skip
    print("smoothing on the trained CAUSE's AUs (sample speech), xcorr lag: " + ", ".join(
        f"{name} {lag:.0f} ms" for name, lag in cause_lag_ms()))  # fmt: skip


if __name__ == "__main__":
    main()
