"""Where the CPU goes, from a py-spy profile: samples folded into the pipeline's stages.

    py-spy record --native --rate 50 --format raw -o profile.txt -- \\
        python -m bench throughput --backends openvino --widths 16 --max-batches 1 \\
            --min-sessions 4 --max-sessions 4 --seconds 15
    python -m bench.profile_summary profile.txt

py-spy samples Python threads with their native frames (``--native``), so a
generator run that OpenVINO executes on the calling thread counts as the
generator. Each sample goes to the innermost stage found in its stack
(``STAGES``, matched on file and function); samples under set-up (imports,
model building, the avatar's face detection) and of threads waiting for work
(``IDLE``: py-spy reported them as active here) are counted apart, and the
shares are of the rest. "loop" is the event loop and the hand-offs between
it and the worker threads (wake-ups, executor submissions); samples that
match no stage are "other" (the scheduler, the simulation's bookkeeping).
"""

import argparse
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

STAGES: dict[str, tuple[str, ...]] = {
    "generator": (
        "run (engine/backends/openvino_backend.py",
        "run (engine/backends/onnxruntime_backend.py",
        "run (engine/backends/torch_backend.py",
    ),
    "au_model": (
        "step (engine/backends/onnxruntime_backend.py",
        "step (engine/backends/openvino_backend.py",
        "step (engine/backends/torch_backend.py",
    ),
    "mel": ("(engine/audio/mel.py",),
    "ingest": ("(engine/audio/resample.py", "(engine/server/audio_frames.py"),
    "blend": ("attention_blend (",),
    "paste": ("compose (engine/avatar/avatar.py",),
    "i420": ("(engine/output/pictures.py",),
    "encode": ("(aiortc/codecs/vpx.py", "(aiortc/codecs/h264.py", "(engine/output/video_encoder.py"),
    "loop": ("(asyncio/", "(concurrent/futures/", "(selectors.py", "(threading.py", "(queue.py"),
}
"""Stage -> substrings of a py-spy frame (``function (file:line)``) that belong to it."""
SETUP = ("build_backends (", "load_avatar (", "_find_and_load (", "export_onnx (", "generator_source (")
"""Frames under which a sample is set-up, not per-session work."""
IDLE = ("_worker (concurrent/futures/thread.py", "select (selectors.py", "wait (threading.py", "get (queue.py")
"""Innermost frames of a thread waiting for work: py-spy counted them as active on this VM."""
APART = ("idle", "set-up")
"""Counted, but not in the shares."""


def stage_of(frames: Sequence[str]) -> str:
    """The stage of one stack (root first): set-up, idle, the innermost stage found, or other."""
    if any(marker in frame for frame in frames for marker in SETUP):
        return "set-up"
    python_frames = [frame for frame in frames if ".py" in frame]
    if not python_frames or any(marker in python_frames[-1] for marker in IDLE):
        return "idle"
    for frame in reversed(frames):
        for stage, patterns in STAGES.items():
            if any(pattern in frame for pattern in patterns):
                return stage
    return "other"


def fold(lines: Iterable[str]) -> Counter[str]:
    """Samples per stage from py-spy's raw format (``frame;frame;... count`` per line)."""
    samples: Counter[str] = Counter()
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if stack and count.isdigit():
            samples[stage_of(stack.split(";"))] += int(count)
    return samples


def table(samples: Counter[str]) -> str:
    """Stages in pipeline order with their share of the samples outside set-up."""
    work = sum(count for stage, count in samples.items() if stage not in APART)
    lines = ["stage      samples  share of work"]
    for stage in [*STAGES, "other", *APART]:
        count = samples.get(stage, 0)
        share = "" if stage in APART or work == 0 else f"{100 * count / work:5.1f} %"
        lines.append(f"{stage:<10} {count:>7}  {share}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile_summary",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("profile", type=Path, help="py-spy record --format raw output")
    args = parser.parse_args(argv)
    try:
        with args.profile.open() as lines:
            samples = fold(lines)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(table(samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
