"""Head motion in 2D: a small pose change moves the head region of the photo, the body and background stay.

A liveness model asks for a few degrees of nod (pitch), turn (yaw) and tilt
(roll) (:class:`engine.pipeline.frames.HeadPose`). A photo has no 3D head, so
the motion is approximated in the picture plane, as a rigid motion of the
head about a pivot low in the head (where the skull sits on the neck):

- roll rotates the head about the pivot;
- yaw moves the face sideways and pitch moves it down, by the arc the face
  surface travels about the neck (``FACE_RADIUS_IOD``), foreshortened by the
  cosine of the angle.

Each pixel follows that motion by a weight (:func:`head_weight`): 1 on the
head (an ellipse around the face box that takes in the hair), falling to 0
over a smooth band that covers the neck and the background right around the
head, 0 further out. The band stretches a little instead of tearing, so the
neck bends and the collar stays put. The compositor applies it
(:class:`kernels.layers.HeadMotion`) at the portrait's resolution.
"""

import math
from dataclasses import dataclass

import numpy as np

from engine.avatar.face_box import FaceBox
from kernels.geometry import CropBox
from kernels.layers import HeadMotion

FACE_RADIUS_IOD = 1.4
"""Distance from the neck's axis of rotation to the face surface, in inter-ocular distances (~9 cm)."""
HEAD_CENTRE_UP = 0.25
"""The head ellipse's centre above the face box's centre, as a fraction of the box height (the hair)."""
HEAD_HALF_WIDTH = 0.85
HEAD_HALF_HEIGHT = 1.0
"""The head ellipse's semi-axes, as fractions of the face box's width and height: face, hair and ears."""
FALLOFF = 0.45
"""The band over which the weight falls from 1 to 0, as a fraction of the ellipse's size (neck, background)."""
PIVOT_DOWN = 0.45
"""The pivot below the face box's centre, as a fraction of the box height: about the jaw's hinge."""
WEIGHT_SIZE_PX = 64
"""Side of the weight map; it is smooth, the compositor interpolates it."""
MIN_MOTION_PX = 0.05
"""A pose that moves no head pixel further than this is no motion at all (the frame is the still portrait)."""


def head_weight(size: int, half_width: float, half_height: float, falloff: float) -> np.ndarray:
    """A (size, size) float32 weight map: 1 inside a centred ellipse, a raised-cosine ramp, then 0.

    half_width, half_height: the ellipse's semi-axes as fractions of the map's
    side; falloff: the ramp's width as a fraction of the ellipse's size. The
    map's border pixels must come out exactly 0 (the ellipse and ramp fit inside).
    """
    centres = (np.arange(size) + 0.5) / size - 0.5
    y, x = np.meshgrid(centres, centres, indexing="ij")
    radius = np.hypot(x / half_width, y / half_height)
    t = np.clip((radius - 1.0) / falloff, 0.0, 1.0)
    weight = (0.5 + 0.5 * np.cos(np.pi * t)).astype(np.float32)
    if weight[0].any() or weight[-1].any() or weight[:, 0].any() or weight[:, -1].any():
        raise ValueError("the head ellipse and its falloff must fit inside the weight map")
    return weight


@dataclass(frozen=True)
class HeadRig:
    """Where a portrait's head is and how it turns: built once per avatar.

    Attributes:
        pivot: ``(x, y)`` portrait pixels the head rotates about.
        iod_px: inter-ocular distance in pixels (sets how far the face travels).
        box: the square the weight map covers (the head, its falloff band and a margin).
        weight: float32 (M, M), :func:`head_weight` over ``box``.
    """

    pivot: tuple[float, float]
    iod_px: float
    box: CropBox
    weight: np.ndarray

    @classmethod
    def for_face(cls, face: FaceBox, iod_px: float) -> "HeadRig":
        """The head around ``face`` (the face box), with the face's inter-ocular distance in pixels."""
        centre_x = face.x + face.width / 2
        centre_y = face.y + face.height / 2
        head_y = centre_y - HEAD_CENTRE_UP * face.height
        half_w, half_h = HEAD_HALF_WIDTH * face.width, HEAD_HALF_HEIGHT * face.height
        side = 2.0 * max(half_w, half_h) * (1.0 + FALLOFF) * 1.1  # the ramp ends inside the box
        box = CropBox(centre_x - side / 2, head_y - side / 2, side)
        weight = head_weight(WEIGHT_SIZE_PX, half_w / side, half_h / side, FALLOFF)
        weight.setflags(write=False)
        return cls(pivot=(centre_x, centre_y + PIVOT_DOWN * face.height), iod_px=iod_px, box=box, weight=weight)

    def forward(self, pitch_deg: float, yaw_deg: float, roll_deg: float) -> np.ndarray:
        """(2, 3) float64: where a head pixel ``(x, y, 1)`` goes for this pose (portrait pixels)."""
        pitch, yaw, roll = (math.radians(v) for v in (pitch_deg, yaw_deg, roll_deg))
        c, s = math.cos(roll), math.sin(roll)  # y grows down: this turns clockwise on screen
        linear = np.array([[c, -s], [s, c]]) @ np.diag([math.cos(yaw), math.cos(pitch)])
        radius = FACE_RADIUS_IOD * self.iod_px
        pivot = np.array(self.pivot)
        offset = pivot - linear @ pivot + radius * np.array([math.sin(yaw), math.sin(pitch)])
        return np.concatenate([linear, offset[:, None]], axis=1)

    def motion(self, pitch_deg: float, yaw_deg: float, roll_deg: float) -> HeadMotion | None:
        """The compositor's motion for a pose (degrees), or None when it moves nothing visibly.

        The matrix is the inverse of :meth:`forward`: the compositor asks, for
        each output pixel, where it was in the photo.
        """
        forward = self.forward(pitch_deg, yaw_deg, roll_deg)
        corners = np.array([[self.box.x0, self.box.y0, 1.0], [self.box.x0 + self.box.size, self.box.y0, 1.0]])
        corners = np.concatenate([corners, corners + [0.0, self.box.size, 0.0]])
        if np.abs(corners @ forward.T - corners[:, :2]).max() < MIN_MOTION_PX:
            return None
        inverse_linear = np.linalg.inv(forward[:, :2])
        backward = np.concatenate([inverse_linear, -(inverse_linear @ forward[:, 2])[:, None]], axis=1)
        return HeadMotion(matrix=backward.astype(np.float32), box=self.box, weight=self.weight)
