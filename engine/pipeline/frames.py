"""The typed frames that flow through a session, each carrying its own timestamps.

Two clocks appear here. *Audio time* counts 16 kHz samples from the session's
start: it is the master clock, and every frame says which instant of the speech
it shows. *Wall time* is ``time.perf_counter()`` seconds in this process: it says
when things happened, and latency figures are differences of wall times.
"""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class FrameTrace:
    """When a frame's inputs arrived and when each stage handled it.

    shown_sample: the audio instant the frame shows, in 16 kHz samples
        (frame n at ``fps`` shows sample ``n * 16000 / fps``).
    due_sample: the frame could be computed once this many samples had arrived
        (the end of its last mel window plus the lookahead).
    audio_arrival_s: wall time at which sample ``due_sample - 1`` arrived.
    render_start_s, render_end_s, send_s: wall times, filled in as they happen.
    send_pts: the 90 kHz pts the frame went out with on a WebRTC video track
        (pairs a frame a peer received with this trace).
    """

    shown_sample: int
    due_sample: int
    audio_arrival_s: float
    render_start_s: float | None = None
    render_end_s: float | None = None
    send_s: float | None = None
    send_pts: int | None = None


@dataclass(frozen=True)
class HeadPose:
    """A small rigid head motion relative to the portrait's own pose, degrees.

    pitch_deg: nod, positive chin down; yaw_deg: turn, positive to the viewer's
    right; roll_deg: tilt, positive clockwise as seen in the picture. Liveness
    motion stays within a few degrees; the renderer approximates it in 2D.
    """

    pitch_deg: float = 0.0
    yaw_deg: float = 0.0
    roll_deg: float = 0.0


@dataclass
class AUFrame:
    """The action units of video frame ``index``: (17,) float32 intensities in 0..5.

    head: the head motion to render with them; None keeps the portrait's pose.
    """

    index: int
    aus: np.ndarray
    trace: FrameTrace
    head: HeadPose | None = None


@dataclass
class VideoFrame:
    """A finished picture: (H, W, 3) uint8 RGB, with the AUs it shows and its trace.

    i420: the same picture as I420 planes, Y (H, W), U and V (H/2, W/2), uint8,
    BT.601 limited range (``kernels.reference.rgb_to_i420``), when the renderer
    made them (it does: only the changed blocks are converted); None otherwise.
    """

    index: int
    rgb: np.ndarray
    aus: np.ndarray
    trace: FrameTrace = field(repr=False)
    i420: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(default=None, repr=False)
