"""Action units -> Apple ARKit's 52 face blendshapes, for game engines and Live Link.

No standard mapping exists; this module is ours, and this table is all of it.
Every blendshape value is ``clip(sum(weight * intensity / 5), 0, 1)`` over the
rows that drive it, then the two combinations below; every left/right pair is
driven identically (the 17 AUs carry no side).

=====  ===========================  =========================================  ======
AU     FACS name                    blendshape(s)                              weight
=====  ===========================  =========================================  ======
AU01   inner brow raiser            browInnerUp                                1.0
AU02   outer brow raiser            browOuterUpLeft/Right                      1.0
AU04   brow lowerer                 browDownLeft/Right                         1.0
AU05   upper lid raiser             eyeWideLeft/Right                          1.0
AU06   cheek raiser                 cheekSquintLeft/Right                      1.0
AU07   lid tightener                eyeSquintLeft/Right                        1.0
AU09   nose wrinkler                noseSneerLeft/Right                        1.0
AU10   upper lip raiser             mouthUpperUpLeft/Right                     1.0
AU12   lip corner puller            mouthSmileLeft/Right                       1.0
AU14   dimpler                      mouthDimpleLeft/Right                      1.0
AU15   lip corner depressor         mouthFrownLeft/Right                       1.0
AU17   chin raiser                  mouthShrugLower                            1.0
AU20   lip stretcher                mouthStretchLeft/Right                     1.0
AU23   lip tightener                mouthPressLeft/Right                       1.0
AU25   lips part                    mouthLowerDownLeft/Right                   0.4
AU25   lips part                    jawOpen                                    0.25
AU26   jaw drop                     jawOpen                                    1.0
AU45   blink                        eyeBlinkLeft/Right                         1.0
=====  ===========================  =========================================  ======

Combinations, applied after the weighted sums (values already in 0..1):

- ``mouthClose = jawOpen * (1 - AU25 / 5)``. ARKit's mouthClose closes the lips
  *against* an open jaw (a rig adds it on top of jawOpen, so it never exceeds
  jawOpen): a jaw dropped with the lips not parted ("mmm" with the mouth
  open) is high mouthClose; lips parted as far as the jaw is open is 0.
- ``eyeWide *= 1 - eyeBlink``: a closing lid cannot be wide open at once.

Every other blendshape stays 0: the 10 eyeLook* (gaze is not estimated from
speech), jawForward/Left/Right and mouthLeft/Right (no sideways AU),
mouthFunnel and mouthPucker (AU22 lip funneler and AU18 lip pucker are not
among the 17), mouthRollLower/Upper (AU28 lip suck has no intensity in
OpenFace), mouthShrugUpper, cheekPuff (AU34) and tongueOut (AU19).
"""

import numpy as np

from engine.au.vocabulary import AU_MAX_INTENSITY, AU_NAMES, N_AUS

BLENDSHAPE_NAMES: tuple[str, ...] = (
    "eyeBlinkLeft",
    "eyeLookDownLeft",
    "eyeLookInLeft",
    "eyeLookOutLeft",
    "eyeLookUpLeft",
    "eyeSquintLeft",
    "eyeWideLeft",
    "eyeBlinkRight",
    "eyeLookDownRight",
    "eyeLookInRight",
    "eyeLookOutRight",
    "eyeLookUpRight",
    "eyeSquintRight",
    "eyeWideRight",
    "jawForward",
    "jawLeft",
    "jawRight",
    "jawOpen",
    "mouthClose",
    "mouthFunnel",
    "mouthPucker",
    "mouthLeft",
    "mouthRight",
    "mouthSmileLeft",
    "mouthSmileRight",
    "mouthFrownLeft",
    "mouthFrownRight",
    "mouthDimpleLeft",
    "mouthDimpleRight",
    "mouthStretchLeft",
    "mouthStretchRight",
    "mouthRollLower",
    "mouthRollUpper",
    "mouthShrugLower",
    "mouthShrugUpper",
    "mouthPressLeft",
    "mouthPressRight",
    "mouthLowerDownLeft",
    "mouthLowerDownRight",
    "mouthUpperUpLeft",
    "mouthUpperUpRight",
    "browDownLeft",
    "browDownRight",
    "browInnerUp",
    "browOuterUpLeft",
    "browOuterUpRight",
    "cheekPuff",
    "cheekSquintLeft",
    "cheekSquintRight",
    "noseSneerLeft",
    "noseSneerRight",
    "tongueOut",
)
"""ARKit's 52 blendshapes (the names of ARKit's ``BlendShapeLocation`` cases) in the index order of
Unreal's ``EARFaceBlendShape``, which is also the order of the 52 shape values in Live Link Face's UDP
packets as open-source receivers decode them (:mod:`engine.output.livelink`)."""
N_BLENDSHAPES = len(BLENDSHAPE_NAMES)


def _swapped(names: tuple[str, ...], *pairs: tuple[str, str]) -> tuple[str, ...]:
    order = list(names)
    for a, b in pairs:
        i, j = order.index(a), order.index(b)
        order[i], order[j] = order[j], order[i]
    return tuple(order)


LIVE_LINK_FACE_CSV_NAMES = _swapped(BLENDSHAPE_NAMES, ("jawLeft", "jawRight"), ("mouthLeft", "mouthRight"))
"""The column order of the Live Link Face app's CSV takes: Unreal's order with jawLeft/jawRight
(indices 15/16) and mouthLeft/mouthRight (21/22) swapped. A client that maps by index must know which."""

BLENDSHAPE_ORDERS: dict[str, tuple[str, ...]] = {"unreal": BLENDSHAPE_NAMES, "livelinkface": LIVE_LINK_FACE_CSV_NAMES}
"""Named index orders of the 52 blendshapes (the wire protocol's ``blendshape_order``)."""


def order_indices(order: str) -> np.ndarray:
    """Indices that put :data:`BLENDSHAPE_NAMES`-ordered values in ``order``: ``shapes[order_indices(order)]``."""
    try:
        names = BLENDSHAPE_ORDERS[order]
    except KeyError:
        raise ValueError(f"unknown blendshape order {order!r}; known: {', '.join(BLENDSHAPE_ORDERS)}") from None
    return np.array([BLENDSHAPE_NAMES.index(name) for name in names], np.intp)


# (AU, blendshape without side, weight, paired): paired rows drive <name>Left and <name>Right.
_ROWS: tuple[tuple[str, str, float, bool], ...] = (
    ("AU01", "browInnerUp", 1.0, False),
    ("AU02", "browOuterUp", 1.0, True),
    ("AU04", "browDown", 1.0, True),
    ("AU05", "eyeWide", 1.0, True),
    ("AU06", "cheekSquint", 1.0, True),
    ("AU07", "eyeSquint", 1.0, True),
    ("AU09", "noseSneer", 1.0, True),
    ("AU10", "mouthUpperUp", 1.0, True),
    ("AU12", "mouthSmile", 1.0, True),
    ("AU14", "mouthDimple", 1.0, True),
    ("AU15", "mouthFrown", 1.0, True),
    ("AU17", "mouthShrugLower", 1.0, False),
    ("AU20", "mouthStretch", 1.0, True),
    ("AU23", "mouthPress", 1.0, True),
    ("AU25", "mouthLowerDown", 0.4, True),
    ("AU25", "jawOpen", 0.25, False),
    ("AU26", "jawOpen", 1.0, False),
    ("AU45", "eyeBlink", 1.0, True),
)

AU_TO_BLENDSHAPE: tuple[tuple[str, str, float], ...] = tuple(
    (au, f"{shape}{side}", weight)
    for au, shape, weight, paired in _ROWS
    for side in (("Left", "Right") if paired else ("",))
)
"""The linear part of the mapping, one row per (AU, blendshape, weight): see the module table."""


def _weight_matrix() -> np.ndarray:
    weights = np.zeros((N_AUS, N_BLENDSHAPES), np.float32)
    for au, shape, weight in AU_TO_BLENDSHAPE:
        weights[AU_NAMES.index(au), BLENDSHAPE_NAMES.index(shape)] += weight
    weights.setflags(write=False)
    return weights


_WEIGHTS = _weight_matrix()
_AU25 = AU_NAMES.index("AU25")
_JAW_OPEN = BLENDSHAPE_NAMES.index("jawOpen")
_MOUTH_CLOSE = BLENDSHAPE_NAMES.index("mouthClose")
_EYE_BLINK = [BLENDSHAPE_NAMES.index("eyeBlinkLeft"), BLENDSHAPE_NAMES.index("eyeBlinkRight")]
_EYE_WIDE = [BLENDSHAPE_NAMES.index("eyeWideLeft"), BLENDSHAPE_NAMES.index("eyeWideRight")]


def aus_to_blendshapes(aus: np.ndarray) -> np.ndarray:
    """Map AU intensities to ARKit blendshape weights.

    Args:
        aus: (..., 17) AU intensities in :data:`AU_NAMES` order, 0..5 (values
            outside are clipped to 0..5 first); typically (17,) or (N, 17).

    Returns:
        (..., 52) float32 blendshape weights in 0..1, :data:`BLENDSHAPE_NAMES` order.
    """
    x = np.asarray(aus, dtype=np.float32)
    if x.shape[-1:] != (N_AUS,):
        raise ValueError(f"expected AUs of shape (..., {N_AUS}), got {x.shape}")
    unit = np.clip(x, 0.0, AU_MAX_INTENSITY) / AU_MAX_INTENSITY
    shapes = np.clip(unit @ _WEIGHTS, 0.0, 1.0)
    shapes[..., _MOUTH_CLOSE] = shapes[..., _JAW_OPEN] * (1.0 - unit[..., _AU25])
    shapes[..., _EYE_WIDE] *= 1.0 - shapes[..., _EYE_BLINK]
    return shapes.astype(np.float32, copy=False)
