"""Where the upper lip really ends in a photo that shows its teeth.

dlib's 68-point model puts the upper inner-lip points (61-63) on the lower
edge of the upper teeth when a smile shows them, not on the lip's edge above
the teeth: the opening it reports is too small, and a warp that closes the
lips along those points would leave the teeth showing between them. Above each
of those points, within ``SEARCH_IOD``, a run of tooth-like pixels (brighter
than the cheek, nearly colourless) that starts close to the point is
therefore taken as teeth, and the point moves up to just above the run; the
outer upper-lip point above it moves up too where the lip would otherwise be
thinner than ``LIP_THICKNESS_IOD`` (dlib often puts both on the teeth). The
lower lip is left alone: its shiny highlights look like teeth, and dlib places
the lower inner lip well.
"""

import numpy as np

from engine.avatar.face68 import N_LANDMARKS, FaceFrame

SEARCH_IOD = 0.15
"""How far above dlib's point the upper lip's edge may be, in inter-ocular distances (~1 cm)."""
TOOTH_CHROMA = 48
"""A tooth pixel's largest minus smallest RGB value, at most (lips and skin are redder)."""
TOOTH_BRIGHTER = 1.1
"""A tooth pixel's luma is at least this times the cheek's."""
MAX_GAP_PX = 4
"""Non-tooth pixels tolerated before the run starts (the dark line where upper and lower teeth meet)."""
MAX_GAP_IN_RUN_PX = 1
"""Non-tooth pixels tolerated inside the run (a gap between two teeth); more is the lip."""
UPPER_INNER_LIP = {61: 50, 62: 51, 63: 52}
"""Each upper inner-lip point and the outer upper-lip point above it."""
LIP_THICKNESS_IOD = 0.04
"""The least thickness of the upper lip: an outer point is raised to stay this far above its raised inner point."""

_LUMA = np.array([0.299, 0.587, 0.114])


def _cheek_luma(portrait: np.ndarray, landmarks: np.ndarray, frame: FaceFrame) -> float:
    """Median luma of small patches on both cheeks, below the eyes."""
    samples = []
    for eye, jaw in ((41, 3), (46, 13)):
        centre = 0.5 * (landmarks[eye] + landmarks[jaw])
        x, y = np.rint(centre).astype(int)
        radius = max(1, int(0.05 * frame.iod_px))
        patch = portrait[max(y - radius, 0) : y + radius + 1, max(x - radius, 0) : x + radius + 1]
        samples.append(patch.reshape(-1, 3))
    return float(np.median(np.concatenate(samples) @ _LUMA))


def refine_upper_lip(portrait: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """A copy of ``landmarks`` (68, 2) with points 61-63 raised over the teeth the photo shows, if any.

    portrait: uint8 (H, W, 3) RGB, the picture the landmarks are in.
    """
    points = np.asarray(landmarks, dtype=np.float32).copy()
    if points.shape != (N_LANDMARKS, 2):
        raise ValueError(f"expected ({N_LANDMARKS}, 2) landmarks, got {points.shape}")
    frame = FaceFrame.from_landmarks(points)
    cheek = _cheek_luma(portrait, points, frame)
    height, width = portrait.shape[:2]
    steps = int(np.ceil(SEARCH_IOD * frame.iod_px))
    for index, outer in UPPER_INNER_LIP.items():
        path = points[index] + np.arange(1, steps + 1)[:, None] * frame.up  # upwards, one pixel a step
        xs = np.clip(np.rint(path[:, 0]).astype(int), 0, width - 1)
        ys = np.clip(np.rint(path[:, 1]).astype(int), 0, height - 1)
        colours = portrait[ys, xs].astype(np.float64)
        tooth = (np.ptp(colours, axis=1) <= TOOTH_CHROMA) & (colours @ _LUMA >= TOOTH_BRIGHTER * cheek)
        last, gap = -1, 0
        for step, is_tooth in enumerate(tooth):
            if is_tooth:
                last, gap = step, 0
            else:
                gap += 1
                if gap > (MAX_GAP_PX if last < 0 else MAX_GAP_IN_RUN_PX):
                    break
        if last >= 0:
            points[index] = path[last] + 0.5 * frame.up
            short = LIP_THICKNESS_IOD * frame.iod_px - float((points[outer] - points[index]) @ frame.up)
            if short > 0:
                points[outer] += short * frame.up
    return points
