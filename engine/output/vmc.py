"""VMC protocol output: a session's face as OSC over UDP, for VSeeFace, Warudo, VNyan, VMC4UE and the like.

One OSC bundle per AU frame, sent the moment the frame arrives, holding:

- ``/VMC/Ext/Blend/Val (s name, f value)`` for every shape of the chosen
  set, zeros included (a receiver keeps the last value it got);
- ``/VMC/Ext/Bone/Pos (s "Head", f px py pz, f qx qy qz qw)`` when the
  frame carries a head pose (:class:`engine.pipeline.frames.HeadPose`);
- ``/VMC/Ext/Blend/Apply``, last: receivers apply the shapes together;
- ``/VMC/Ext/T (f time)``: the frame's instant, seconds of the session's audio.

Shape sets (``shape_set``): ``"vrm1"`` VRM 1.0 presets and ``"vrm0"`` VRM
0.x presets (both from :mod:`engine.au.vrm`), ``"arkit"`` the 52 ARKit
names (:mod:`engine.au.arkit`; "perfect sync" avatars). Receivers listen on
UDP 39539 by default. Datagrams go to one address the operator allowed
(:mod:`engine.output.destinations`); nothing answers, and a receiver that
is not running costs nothing but the datagrams.

Head rotation: VMC bones live in Unity's left-handed space (+Y up, the
avatar facing +Z, its right hand at +X); the rotation is Unity's
``Quaternion.Euler(pitch, -yaw, -roll)``, because :class:`HeadPose` measures
yaw and roll as the viewer sees them (facing the avatar). The position is
sent as 0: receivers we know of use only the rotation of the head bone.
"""

import math
from typing import TYPE_CHECKING

import numpy as np

from engine.au.arkit import BLENDSHAPE_NAMES, aus_to_blendshapes
from engine.au.vrm import VRM0_INDICES, VRM0_NAMES, VRM1_NAMES, aus_to_vrm
from engine.audio import SAMPLE_RATE_HZ
from engine.output.errors import OutputUnavailable
from engine.output.udp import UdpSender
from engine.pipeline.frames import AUFrame, HeadPose

if TYPE_CHECKING:
    from pythonosc.osc_message import OscMessage

SHAPE_SETS: dict[str, tuple[str, ...]] = {"vrm1": VRM1_NAMES, "vrm0": VRM0_NAMES, "arkit": BLENDSHAPE_NAMES}
"""The shape names each set sends, in the order they appear in a bundle."""
DEFAULT_SHAPE_SET = "vrm1"


def shape_values(aus: np.ndarray, shape_set: str) -> np.ndarray:
    """The weights (0..1) of ``SHAPE_SETS[shape_set]`` for one frame's (17,) AUs."""
    if shape_set == "arkit":
        return aus_to_blendshapes(aus)
    vrm = aus_to_vrm(aus)
    return vrm if shape_set == "vrm1" else vrm[VRM0_INDICES]


def head_quaternion(head: HeadPose) -> tuple[float, float, float, float]:
    """(x, y, z, w) of Unity's ``Quaternion.Euler(pitch, -yaw, -roll)``: z first, then x, then y."""
    x = _axis_quaternion((1.0, 0.0, 0.0), head.pitch_deg)
    y = _axis_quaternion((0.0, 1.0, 0.0), -head.yaw_deg)
    z = _axis_quaternion((0.0, 0.0, 1.0), -head.roll_deg)
    return _multiply(y, _multiply(x, z))


class VmcOutput:
    """An :class:`engine.live.outputs.AUOutput` that sends every AU frame as a VMC bundle over UDP.

    host, port: the receiver, from the operator's allowed destinations.
    shape_set: ``"vrm1"``, ``"vrm0"`` or ``"arkit"`` (see the module docstring).

    Raises:
        OutputUnavailable: python-osc is not installed (the ``apps`` extra).
        ValueError: an unknown shape set.
    """

    name = "vmc"

    def __init__(self, *, host: str, port: int, shape_set: str = DEFAULT_SHAPE_SET) -> None:
        if shape_set not in SHAPE_SETS:
            raise ValueError(f"unknown VMC shape set {shape_set!r}; choose one of: {', '.join(SHAPE_SETS)}")
        try:
            from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
            from pythonosc.osc_message_builder import OscMessageBuilder
        except ImportError:
            raise OutputUnavailable("the VMC output needs python-osc: pip install 'avatar-engine[apps]'") from None
        self._bundle = OscBundleBuilder
        self._message = OscMessageBuilder
        self._immediately = IMMEDIATELY
        self.shape_set = shape_set
        self.udp = UdpSender(host, port)

    def encode(self, frame: AUFrame) -> bytes:
        """The bundle for ``frame``: shape values, the head bone if any, Apply, and the time."""
        bundle = self._bundle(self._immediately)
        for name, value in zip(SHAPE_SETS[self.shape_set], shape_values(frame.aus, self.shape_set)):
            bundle.add_content(self._build("/VMC/Ext/Blend/Val", ("s", name), ("f", float(value))))
        if frame.head is not None:
            qx, qy, qz, qw = head_quaternion(frame.head)
            position = (("f", 0.0),) * 3
            rotation = (("f", qx), ("f", qy), ("f", qz), ("f", qw))
            bundle.add_content(self._build("/VMC/Ext/Bone/Pos", ("s", "Head"), *position, *rotation))
        bundle.add_content(self._build("/VMC/Ext/Blend/Apply"))
        bundle.add_content(self._build("/VMC/Ext/T", ("f", frame.trace.shown_sample / SAMPLE_RATE_HZ)))
        return bundle.build().dgram

    async def send_aus(self, frame: AUFrame) -> None:
        """Send ``frame``'s bundle now (a full socket buffer drops it: :class:`UdpSender`)."""
        self.udp.send(self.encode(frame))

    async def close(self) -> None:
        self.udp.close()

    def _build(self, address: str, *args: tuple[str, str | float]) -> "OscMessage":
        message = self._message(address)
        for kind, value in args:
            message.add_arg(value, kind)
        return message.build()


def _axis_quaternion(axis: tuple[float, float, float], angle_deg: float) -> tuple[float, float, float, float]:
    half = math.radians(angle_deg) / 2
    s = math.sin(half)
    return (axis[0] * s, axis[1] * s, axis[2] * s, math.cos(half))


def _multiply(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, float, float, float]:
    """Hamilton product ``a * b`` of (x, y, z, w) quaternions: ``b`` applied first."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    )
