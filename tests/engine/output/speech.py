"""Speech-driven AU frames for the output tests: the trained default CAUSE in a real Session, on the sample speech.

Outputs get frames straight from an :class:`engine.pipeline.Session`, as a live session core will hand
them over, with the wall time each frame became ready (the moment ``push_audio`` returned it).
"""

import time
import wave
from dataclasses import dataclass

import numpy as np

from engine.au.liveness import LivenessSettings
from engine.audio import SAMPLE_RATE_HZ
from engine.backends.model_files import WEIGHTS_DIR
from engine.backends.onnxruntime_backend import OnnxRuntimeAUStep
from engine.cli.render import SAMPLE_SPEECH
from engine.live.outputs import AUOutput
from engine.output.feed import feed
from engine.pipeline import AUFrame, FrameTrace, Session

FPS = 25
TRAILING_SILENCE_S = 2.0


@dataclass
class SentFrame:
    """A frame handed to an output: when it was ready, and when ``send_aus`` returned (wall seconds)."""

    frame: AUFrame
    ready_s: float
    sent_s: float


def speech_then_silence() -> np.ndarray:
    """The built-in sample (8.7 s, 16 kHz mono int16, a pause inside) followed by 2 s of digital silence."""
    with wave.open(str(SAMPLE_SPEECH), "rb") as wav:
        assert wav.getframerate() == SAMPLE_RATE_HZ and wav.getnchannels() == 1
        speech = np.frombuffer(wav.readframes(wav.getnframes()), "<i2")
    return np.concatenate([speech, np.zeros(int(TRAILING_SILENCE_S * SAMPLE_RATE_HZ), np.int16)])


def speaking(audio: np.ndarray, n_frames: int, *, fps: int = FPS) -> np.ndarray:
    """(n_frames,) bool: whether the speech around each frame's instant (+-50 ms) is louder than 1/10 of its peak."""
    x = audio.astype(np.float64) / 32768.0
    half = SAMPLE_RATE_HZ // 20
    rms = np.array(
        [np.sqrt(np.mean(x[max(0, c - half) : c + half] ** 2)) for c in np.arange(n_frames) * SAMPLE_RATE_HZ // fps]
    )
    return rms > 0.1 * rms.max()


def au_frame(index: int, aus: np.ndarray) -> AUFrame:
    """Frame ``index`` at 25 fps with the given (17,) AUs, its audio arrived now."""
    return AUFrame(index, aus.astype(np.float32), FrameTrace(index * 640, index * 640 + 720, time.perf_counter()))


def trained_cause() -> OnnxRuntimeAUStep:
    return OnnxRuntimeAUStep(WEIGHTS_DIR / "cause_step.onnx", threads=1)


async def drive(output: AUOutput, audio: np.ndarray, *, realtime: bool) -> list[SentFrame]:
    """Feed ``audio`` through a Session with the trained CAUSE to ``output``, noting when each frame was
    ready and when ``send_aus`` returned."""
    sent: list[SentFrame] = []
    # Liveness off: these tests follow the speech alone (blinks and idle motion are tests/engine/au's).
    session = Session(trained_cause(), fps=FPS, liveness=LivenessSettings.off())
    await feed(session, audio, [output], realtime=realtime, on_sent=lambda *item: sent.append(SentFrame(*item)))
    return sent
