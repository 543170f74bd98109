"""Speech from a file to AU outputs, paced like a live voice: until the live-session core hands outputs
their frames, this is how a recording drives VSeeFace, VTube Studio or Unreal (``python -m engine.output``)."""

import asyncio
import time
from collections.abc import Callable, Sequence

import numpy as np

from engine.audio import SAMPLE_RATE_HZ
from engine.live.outputs import AUOutput
from engine.pipeline import AUFrame, Session

CHUNK_SAMPLES = 320
"""20 ms of 16 kHz audio per push, as a live source delivers it."""

OnSent = Callable[[AUFrame, float, float], None]
"""Called with each frame, the wall time it was ready and the time every output had taken it."""


async def feed(
    session: Session,
    samples: np.ndarray,
    outputs: Sequence[AUOutput],
    *,
    realtime: bool = True,
    on_sent: OnSent | None = None,
) -> int:
    """Push 16 kHz mono ``samples`` through ``session`` 20 ms at a time and hand every AU frame to every
    output as soon as the session returns it; then finish the stream. Returns the number of frames.

    realtime: push chunk ``k`` at ``k * 20 ms`` after the first (a voice), else as fast as the outputs take them.
    """
    started = time.perf_counter()
    count = 0

    async def hand_over(frames: list[AUFrame]) -> None:
        nonlocal count
        ready_s = time.perf_counter()
        for frame in frames:
            for output in outputs:
                await output.send_aus(frame)
            if on_sent is not None:
                on_sent(frame, ready_s, time.perf_counter())
            count += 1

    for k, start in enumerate(range(0, samples.shape[0], CHUNK_SAMPLES)):
        due_s = started + k * CHUNK_SAMPLES / SAMPLE_RATE_HZ
        await asyncio.sleep(max(0.0, due_s - time.perf_counter()) if realtime else 0)
        await hand_over(session.push_audio(samples[start : start + CHUNK_SAMPLES]))
    await hand_over(session.finish())
    return count
