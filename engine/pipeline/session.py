"""A session: one speaker's audio clock, features and AU stream.

Audio in any supported format goes through the same steps whether it comes
from WebRTC, a WebSocket or a file: convert to 16 kHz mono, count samples
(the session's audio clock), compute log-mel hops as soon as their window is
complete, run CAUSE one push at a time, and emit each video frame's AUs the
moment the audio it depends on has arrived. Liveness (blinks, smoothing, head
motion, idle motion; ``engine.au.liveness``) is applied to every frame after
the expression sliders, on the same audio clock.
"""

import math
import time

import numpy as np

from engine.au import ExpressionControl
from engine.au.liveness import Liveness, LivenessSettings
from engine.audio import SAMPLE_RATE_HZ, AudioConverter, MelConfig, StreamingLogMel
from engine.backends.base import AUStepBackend
from engine.pipeline.au_estimator import AUEstimator
from engine.pipeline.frames import AUFrame, FrameTrace, HeadPose


def lookahead_samples(lookahead_hops: int, mel_config: MelConfig | None = None) -> int:
    """How far the audio a frame needs reaches past the instant it shows, in 16 kHz samples.

    The last mel window a frame needs starts ``lookahead_hops`` hops after the
    one at its instant and spans ``window_samples``: at 25 fps frame n shows
    sample 640 n and is due once sample ``640 n + lookahead_samples`` has
    arrived (560 with the default 1 hop: 35 ms; 720 with 2 hops).
    """
    mel = mel_config or MelConfig()
    return lookahead_hops * mel.hop_samples + mel.window_samples


class Session:
    """Turns a stream of audio chunks into a stream of AU frames with traces."""

    def __init__(
        self,
        au_backend: AUStepBackend,
        *,
        fps: int = 25,
        input_rate_hz: int = SAMPLE_RATE_HZ,
        channels: int = 1,
        expression: ExpressionControl | None = None,
        mel_config: MelConfig | None = None,
        liveness: LivenessSettings | None = None,
    ) -> None:
        """``liveness``: None for the defaults (``LivenessSettings()``), ``LivenessSettings.off()`` for none."""
        self.fps = fps
        self.expression = expression or ExpressionControl()
        self._mel_config = mel_config or MelConfig()
        self._converter = AudioConverter(input_rate_hz=input_rate_hz, channels=channels)
        self._mel = StreamingLogMel(self._mel_config)
        self._estimator = AUEstimator(au_backend, fps=fps)
        self._liveness = Liveness(liveness or LivenessSettings(), fps=fps, mel_config=self._mel_config)
        self.samples_received = 0
        """The audio clock: 16 kHz samples received since the session started."""

    @property
    def liveness(self) -> LivenessSettings:
        """The liveness settings now applied to this session's frames."""
        return self._liveness.settings

    @liveness.setter
    def liveness(self, settings: LivenessSettings) -> None:
        """Change them from the next frame on (one reference swap: safe from another thread)."""
        self._liveness.settings = settings

    def shown_sample(self, frame_index: int) -> int:
        """The audio instant frame ``frame_index`` shows, in 16 kHz samples."""
        return frame_index * SAMPLE_RATE_HZ // self.fps

    def due_sample(self, frame_index: int) -> int:
        """How many 16 kHz samples must have arrived before frame ``frame_index`` can be computed."""
        last_hop = self._estimator.raw_hops_needed(frame_index) - 1
        return last_hop * self._mel_config.hop_samples + self._mel_config.window_samples

    def push_audio(self, samples: np.ndarray, *, arrival_s: float | None = None) -> list[AUFrame]:
        """Feed one chunk in the session's input format; return the AU frames it completed.

        ``arrival_s`` is the wall time the chunk arrived (``time.perf_counter()``),
        now if not given; it becomes the frames' ``audio_arrival_s``.
        """
        arrival = time.perf_counter() if arrival_s is None else arrival_s
        return self._consume(self._converter.push(samples), arrival)

    def finish(self) -> list[AUFrame]:
        """End of the stream (a file's end): emit every frame up to the audio's end.

        The last frames need mel windows and lookahead beyond the final sample;
        they are completed with digital silence, as a speaker falling silent
        would. The video then lasts ``ceil(duration * fps)`` frames, within one
        frame of the audio.
        """
        arrival = time.perf_counter()
        frames = self._consume(self._converter.flush(), arrival)
        n_frames = math.ceil(self.samples_received * self.fps / SAMPLE_RATE_HZ)
        if n_frames == 0:
            return frames
        padding = max(0, self.due_sample(n_frames - 1) - self.samples_received)
        hops = self._mel.push(np.zeros(padding, np.float32))
        self._liveness.push_hops(hops)
        for index, aus in self._estimator.push(hops):
            if index < n_frames:
                frames.append(self._frame(index, aus, arrival))
        return frames

    def _consume(self, samples: np.ndarray, arrival: float) -> list[AUFrame]:
        self.samples_received += samples.shape[0]
        hops = self._mel.push(samples)
        self._liveness.push_hops(hops)
        return [self._frame(index, aus, arrival) for index, aus in self._estimator.push(hops)]

    def _frame(self, index: int, aus: np.ndarray, arrival: float) -> AUFrame:
        trace = FrameTrace(
            shown_sample=self.shown_sample(index),
            due_sample=self.due_sample(index),
            audio_arrival_s=arrival,
        )
        hops_through = self._estimator.raw_hops_needed(index)
        live_aus, pose = self._liveness.frame(index, self.expression.apply(aus), hops_through=hops_through)
        head = None if pose is None else HeadPose(*pose)
        return AUFrame(index=index, aus=live_aus, trace=trace, head=head)
