"""Live Link Face compatible output: ARKit blendshapes as UDP datagrams, for Unreal Engine's Live Link.

Epic's Live Link Face app streams an iPhone's ARKit face to Unreal over UDP
(port 11111). Its packet format has **no published specification**: the
layout below is reverse-engineered, as open-source receivers and senders
decode it (PyLiveLinkFace, which Unreal accepts in place of the app). Every
number is big-endian (network order):

===========  ======  ==========================================================
field        type    value
===========  ======  ==========================================================
version      u8      6
device id    string  i32 length, then UTF-8 (we send a 36-character UUID)
subject      string  i32 length, then UTF-8: the Live Link subject's name
frame        i32     frame number (we send the AU frame's index)
sub-frame    f32     0
rate         2 x i32 numerator (the session's fps), denominator 1
count        u8      61
values       61 f32  52 ARKit blendshapes (0..1) in Unreal's ``EARFaceBlendShape``
                     order (``engine.au.arkit.BLENDSHAPE_NAMES``), then head
                     yaw, pitch, roll, left eye yaw, pitch, roll, right eye
                     yaw, pitch, roll
===========  ======  ==========================================================

With a 36-character device id the first bytes also read, at the fixed
offsets PyLiveLinkFace's decoder uses, as a little-endian i32 version 6 and a
37-character ``$``-prefixed id: both readings agree. The 9 rotations are sent
as 0: their units in the app's stream are not documented, and a wrong guess
would swing the head. Unreal's Live Link Face source maps values by index,
so the order matters (the app's CSV takes use another: :mod:`engine.au.arkit`).
"""

import struct
import uuid

import numpy as np

from engine.au.arkit import N_BLENDSHAPES, aus_to_blendshapes
from engine.output.udp import UdpSender
from engine.pipeline.frames import AUFrame

PACKET_VERSION = 6
N_ROTATIONS = 9
"""Head yaw/pitch/roll, then left and right eye yaw/pitch/roll, after the 52 shapes."""
N_VALUES = N_BLENDSHAPES + N_ROTATIONS
DEFAULT_SUBJECT = "Avatar"


def encode_packet(*, device_id: str, subject: str, frame_number: int, fps: int, blendshapes: np.ndarray) -> bytes:
    """One Live Link Face datagram (see the module docstring for the layout).

    blendshapes: (52,) weights in 0..1, ``BLENDSHAPE_NAMES`` order.
    """
    shapes = np.asarray(blendshapes, np.float32).reshape(-1)
    if shapes.size != N_BLENDSHAPES:
        raise ValueError(f"expected {N_BLENDSHAPES} blendshapes, got {shapes.size}")
    values = np.concatenate([shapes, np.zeros(N_ROTATIONS, np.float32)]).astype(">f4")
    return b"".join(
        [
            struct.pack(">B", PACKET_VERSION),
            _string(device_id),
            _string(subject),
            struct.pack(">ifiiB", frame_number, 0.0, fps, 1, N_VALUES),
            values.tobytes(),
        ]
    )


class LiveLinkOutput:
    """An :class:`engine.live.outputs.AUOutput` that sends every AU frame as a Live Link Face datagram.

    host, port: the receiver (Unreal's Live Link Face source listens on 11111), from the operator's
        allowed destinations. subject: the Live Link subject name Unreal shows. fps: the session's
        frame rate, sent as the packets' frame rate.
    """

    name = "livelink"

    def __init__(self, *, host: str, port: int, fps: int, subject: str = DEFAULT_SUBJECT) -> None:
        if not subject:
            raise ValueError("the Live Link subject name must not be empty")
        self.udp = UdpSender(host, port)
        self.fps = fps
        self.subject = subject
        self.device_id = str(uuid.uuid4())
        """36 characters, stable for the output's life: Unreal keys its sources by it."""

    def encode(self, frame: AUFrame) -> bytes:
        return encode_packet(
            device_id=self.device_id,
            subject=self.subject,
            frame_number=frame.index,
            fps=self.fps,
            blendshapes=aus_to_blendshapes(frame.aus),
        )

    async def send_aus(self, frame: AUFrame) -> None:
        """Send ``frame`` now (a full socket buffer drops it: :class:`UdpSender`)."""
        self.udp.send(self.encode(frame))

    async def close(self) -> None:
        self.udp.close()


def _string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack(">i", len(raw)) + raw
