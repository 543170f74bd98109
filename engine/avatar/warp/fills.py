"""What a warp cannot make: the inside of an opening mouth and eyelids sliding over the eyes.

A warp only moves pixels that exist. Two things behind the face surface do
not move with it, so both fills follow one rule: **what lies behind an
opening is fixed to the skull, the lips and lids slide over it.**

* Mouth. Inside the moved inner-lip contour (points 60-67) we paint a dark
  cavity (darkest mid-opening, lighter at the lips and darker towards the
  corners), a tongue tint low in a wide opening, a faint band of lower teeth
  above the lower lip, and upper teeth hanging from where the upper lip was in
  the photo (they belong to the skull: lowering the jaw opens a gap *below*
  them, raising the upper lip (AU10) bares more of them). Whatever the photo
  already showed between the lips (the astronaut's teeth) is kept in place
  over that, faded out towards the photo's lower lip, which leaves with the
  jaw. The fill fades in as the inner lips move (0 -> 1 over
  :data:`MOUTH_FADE_IOD`), so the photo's own AUs give the photo back exactly.
* Eyes. Inside both the photo's and the moved eye contour the photo's
  eyeball is shown unwarped, so a lowering lid covers the iris instead of
  squashing it. In a blink (AU45) the lid is painted from a little above
  the photo's upper lid (its lashes go too) down to the moved one with the
  skin around the eye, smoothly averaged (the warp alone would stretch
  lashes and iris edge into the lid); near a full blink the last sliver
  still open is painted too, and a lash line with a soft shadow is drawn
  along the moved upper lid.

Both paint on a :class:`~engine.avatar.warp.canvas.Canvas`: synthetic colour
over the warped photo, and "the photo as photographed" where the skull's
parts show (the photo's teeth, the eyeballs), so those keep the photo's full
resolution. Colours come from the photo once (:func:`sample_palette`), scaled
by the face's brightness where they are synthetic. Images are float32 RGB in
0..255; masks are anti-aliased coverage (:mod:`engine.avatar.warp.masks`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from engine.avatar.face68 import (
    EYE_LEFT,
    EYE_RIGHT,
    LIPS_INNER,
    LOWER_INNER_LIP,
    UPPER_INNER_LIP,
    FaceFrame,
)
from engine.avatar.warp.canvas import Canvas
from engine.avatar.warp.masks import bounding_slices, polygon_coverage, polyline_coverage

MOUTH_FADE_IOD = 0.04
"""Inner-lip movement (IOD) over which the mouth fill fades in from the warped photo."""
TOOTH_SHOW_IOD = 0.07
"""How far the upper incisors reach below the photo's upper inner lip (IOD; ~4 mm)."""
TOOTH_HIDDEN_IOD = 0.12
"""Upper-teeth height above the photo's upper inner lip, up to the gum line (IOD; ~8 mm)."""
LOWER_TOOTH_SHOW_IOD = 0.04
"""Lower incisor band above the lower lip when the jaw is open (IOD)."""
PHOTO_TEETH_REACH = 0.75
"""Teeth the photo shows reach this fraction of its lip opening down; the rest fades (lower lip, lower teeth)."""
TEETH_HALF_WIDTH_IOD = (0.22, 0.5)
"""Teeth are lit up to 0.22 IOD from the mouth centre and fade to shadow by 0.5 (the buccal corridor)."""
INCISOR_GAPS_IOD = (0.0, 0.135, 0.235)
"""Lateral offsets of the gaps between upper teeth (central and lateral incisors ~8.5 and ~6.5 mm)."""
WIDE_OPENING_IOD = (0.08, 0.23)
"""Lip opening (IOD) over which the tongue and the lower teeth come into view."""
BLINK_PAINT_MIN = 0.04
"""Below this closure (AU45 / 5) a lid is only moved by the warp: the lid skin and lash line it would get are
under 3 % opaque, invisible, and CAUSE's AU45 rarely sits at exactly 0."""
BLINK_SKIN_START = 0.5
"""Blink closure (AU45 / 5) from which the sliver of eye still open fades to lid skin."""
LID_MARGIN_IOD = 0.08
"""How far above dlib's two upper-lid points a closing lid starts being painted (IOD; the corners stay)..."""
LID_MARGIN_FULL_CLOSURE = 0.3
"""...reached from 0 at this closure on, so that a twitch of the lid does not repaint the lashes."""
LID_SMOOTHING_IOD = 0.06
"""Gaussian sigma (IOD) of the skin average a closing lid is painted with."""
LASH_OPACITY = 0.75
LASH_WIDTH_PX = 1.0
LASH_SHADOW_OPACITY = 0.25
LASH_SHADOW_WIDTH_PX = 2.5
REFERENCE_SKIN_LUMA = 170.0
"""Skin brightness for which the synthetic colours below are written."""

# Warm, as a mouth lit from the front: grey teeth and a near-black cavity read as a slate-blue bar.
_TEETH = np.array([232.0, 220.0, 198.0])
_CAVITY_DARK = np.array([52.0, 14.0, 18.0])
_CAVITY_RIM = np.array([125.0, 52.0, 56.0])
_TONGUE = np.array([180.0, 84.0, 88.0])
_GUM = np.array([175.0, 88.0, 92.0])


@dataclass(frozen=True)
class Palette:
    """Colours the fills paint with, float32 RGB 0..255 (arrays of shape (3,) unless noted)."""

    teeth: np.ndarray
    photo_shows_teeth: bool
    """Teeth were visible between the photo's lips (their colour is then the photo's)."""
    cavity_dark: np.ndarray
    cavity_rim: np.ndarray
    tongue: np.ndarray
    gum: np.ndarray
    lash: np.ndarray


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114])


def _pixels_near(image: np.ndarray, centres: np.ndarray, radius_px: float) -> np.ndarray:
    """(M, 3) pixels of ``image`` within ``radius_px`` of any of ``centres`` (K, 2)."""
    ys, xs = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    grid = np.stack([xs, ys], axis=-1).astype(np.float64)
    near = np.zeros(image.shape[:2], dtype=bool)
    for centre in centres:
        near |= np.hypot(*(grid - centre).transpose(2, 0, 1)) <= radius_px
    return image[near].astype(np.float64)


def sample_palette(image: np.ndarray, landmarks: np.ndarray) -> Palette:
    """Fill colours for the face ``image`` (H, W, 3) with ``landmarks`` (68, 2) pixels.

    Skin brightness from both cheeks scales the synthetic cavity, tongue, gum
    and default teeth colours; lashes are the darkest tenth along the upper
    lids; teeth are the photo's own bright pixels between the lips if it
    shows at least a few, the default otherwise.
    """
    image = np.asarray(image)
    landmarks = np.asarray(landmarks, dtype=np.float64)
    iod = FaceFrame.from_landmarks(landmarks).iod_px
    cheeks = np.array([landmarks[[2, 31, 41]].mean(axis=0), landmarks[[14, 35, 46]].mean(axis=0)])
    skin_luma = float(np.median(_luma(_pixels_near(image, cheeks, 0.1 * iod))))
    light = float(np.clip(skin_luma / REFERENCE_SKIN_LUMA, 0.4, 1.3))

    lid_line = landmarks[[36, 37, 38, 39, 42, 43, 44, 45]]
    along_lid = _pixels_near(image, lid_line, 0.05 * iod)
    darkest = along_lid[_luma(along_lid) <= np.quantile(_luma(along_lid), 0.1)]

    inside = polygon_coverage(landmarks[LIPS_INNER], image.shape[:2]) > 0.99
    between_lips = image[inside].astype(np.float64)
    bright = between_lips[_luma(between_lips) > 0.9 * skin_luma] if len(between_lips) else between_lips
    photo_shows_teeth = len(bright) >= 8
    teeth = np.median(bright, axis=0) if photo_shows_teeth else _TEETH * light

    def f32(rgb: np.ndarray) -> np.ndarray:
        return np.clip(rgb, 0.0, 255.0).astype(np.float32)

    return Palette(
        teeth=f32(teeth),
        photo_shows_teeth=photo_shows_teeth,
        cavity_dark=f32(_CAVITY_DARK * light),
        cavity_rim=f32(_CAVITY_RIM * light),
        tongue=f32(_TONGUE * light),
        gum=f32(_GUM * light),
        lash=f32(darkest.mean(axis=0)),
    )


def _smoothstep(x: np.ndarray | float) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _curve(points_face: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``up`` of the polyline (K, 2) of (lateral, up) points at laterals ``u``, flat beyond its ends."""
    order = np.argsort(points_face[:, 0])
    return np.interp(u, points_face[order, 0], points_face[order, 1])


def _blend(image: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``image`` (..., 3) moved towards ``colour`` ((3,) or (..., 3)) by ``alpha`` (...)."""
    alpha = alpha[..., None]
    return image * (1.0 - alpha) + colour * alpha


def _gap_lines(lateral: np.ndarray, offsets_iod: tuple[float, ...], iod: float) -> np.ndarray:
    """1 on thin (~0.6 px) vertical lines at ``+-offsets_iod`` from the centre, 0 elsewhere."""
    distance = np.min(np.abs(np.abs(lateral)[..., None] - np.array(offsets_iod) * iod), axis=-1)
    return np.clip(1.0 - distance / 0.6, 0.0, 1.0)


def _mouth_interior(
    rows: slice,
    cols: slice,
    frame: FaceFrame,
    src_landmarks: np.ndarray,
    dst_landmarks: np.ndarray,
    src_inside: np.ndarray,
    palette: Palette,
) -> tuple[np.ndarray, np.ndarray]:
    """The mouth interior over the window ``rows, cols``: its colour (h, w, 3) and where the photo shows (h, w).

    Works in face coordinates (lateral, up) in pixels so that "below the lip"
    follows head roll. src_inside: (h, w) coverage of the photo's own opening.
    The second array is the weight of the photo's own teeth, kept in place.
    """
    ys, xs = np.mgrid[rows, cols]
    u, v = np.moveaxis(frame.to_face(np.stack([xs, ys], axis=-1)), -1, 0)
    src_face, dst_face = frame.to_face(src_landmarks), frame.to_face(dst_landmarks)
    iod = frame.iod_px
    upper = _curve(dst_face[UPPER_INNER_LIP], u)
    lower = _curve(dst_face[LOWER_INNER_LIP], u)
    photo_upper = _curve(src_face[UPPER_INNER_LIP], u)
    photo_lower = _curve(src_face[LOWER_INNER_LIP], u)
    height = np.maximum(upper - lower, 1e-3)
    depth = np.clip((upper - v) / height, 0.0, 1.0)  # 0 at the upper lip, 1 at the lower lip
    centre = 0.5 * (dst_face[60, 0] + dst_face[64, 0])
    half_width = max(0.5 * abs(dst_face[64, 0] - dst_face[60, 0]), 1.0)
    off_centre = np.abs(u - centre)
    corner_shadow = 1.0 - 0.5 * np.clip(off_centre / half_width, 0.0, 1.0) ** 2
    lit_teeth = 1.0 - 0.55 * _smoothstep(
        (off_centre - TEETH_HALF_WIDTH_IOD[0] * iod) / ((TEETH_HALF_WIDTH_IOD[1] - TEETH_HALF_WIDTH_IOD[0]) * iod)
    )

    middle = 1.0 - np.abs(2.0 * depth - 1.0)
    layer = _blend(np.broadcast_to(palette.cavity_rim, u.shape + (3,)), palette.cavity_dark, np.sqrt(middle))
    layer = layer * corner_shadow[..., None]

    wide = _smoothstep((height - WIDE_OPENING_IOD[0] * iod) / ((WIDE_OPENING_IOD[1] - WIDE_OPENING_IOD[0]) * iod))
    tongue_alpha = 0.85 * _smoothstep((depth - 0.5) / 0.35) * wide
    layer = _blend(layer, palette.tongue * (0.55 + 0.45 * depth)[..., None] * corner_shadow[..., None], tongue_alpha)

    lower_teeth = np.clip(lower + LOWER_TOOTH_SHOW_IOD * iod - v + 0.5, 0.0, 1.0) * 0.6 * wide
    layer = _blend(layer, palette.teeth * (0.8 * lit_teeth)[..., None], lower_teeth)

    photo_height = np.maximum(photo_upper - photo_lower, 1e-3)
    shown = np.maximum(TOOTH_SHOW_IOD * iod, PHOTO_TEETH_REACH * photo_height if palette.photo_shows_teeth else 0.0)
    edge = photo_upper - shown
    gum_line = photo_upper + TOOTH_HIDDEN_IOD * iod
    below_gum = np.clip(gum_line - v + 0.5, 0.0, 1.0)
    upper_teeth = np.clip(v - edge + 0.5, 0.0, 1.0) * below_gum
    gaps = 1.0 - 0.15 * _gap_lines(u - centre, INCISOR_GAPS_IOD, iod)
    layer = _blend(layer, palette.teeth * (lit_teeth * gaps)[..., None], upper_teeth)
    layer = _blend(layer, palette.gum, np.clip(v - gum_line + 0.5, 0.0, 1.0))

    below_photo_lip = np.clip(photo_upper - v, 0.0, 1.0)  # the lip's shadow line leaves with the lip
    above_photo_lip = np.clip((v - photo_lower) / ((1.0 - PHOTO_TEETH_REACH) * photo_height), 0.0, 1.0)
    return layer, src_inside * below_photo_lip * above_photo_lip


def fill_mouth(
    canvas: Canvas,
    src_landmarks: np.ndarray,
    dst_landmarks: np.ndarray,
    frame: FaceFrame,
    palette: Palette,
) -> None:
    """Paint the mouth opening on ``canvas`` (the photo warped to ``dst_landmarks``).

    src_landmarks, dst_landmarks: (68, 2) crop pixels before and after the AUs.
    frame: the photo's face frame. Nothing is painted when the inner lips did
    not move.
    """
    lips_moved = np.abs(dst_landmarks[LIPS_INNER] - src_landmarks[LIPS_INNER]).max()
    fade = float(np.clip(lips_moved / (MOUTH_FADE_IOD * frame.iod_px), 0.0, 1.0))
    if fade == 0.0:
        return
    shape = canvas.alpha.shape
    opening = dst_landmarks[LIPS_INNER]
    rows, cols = bounding_slices(np.concatenate([opening, src_landmarks[LIPS_INNER]]), shape)
    coverage = fade * polygon_coverage(opening, shape)[rows, cols]
    src_inside = polygon_coverage(src_landmarks[LIPS_INNER], shape)[rows, cols]
    interior, photo_teeth = _mouth_interior(rows, cols, frame, src_landmarks, dst_landmarks, src_inside, palette)
    canvas.paint(rows, cols, interior, coverage)
    canvas.show_photo_in_place(rows, cols, coverage * photo_teeth)


def _skin_around(source: np.ndarray, hole: np.ndarray, sigma_px: float) -> np.ndarray:
    """The photo's skin smoothly filled into ``hole``: (h, w, 3) float32 over the window ``source`` (h, w, 3).

    Normalised convolution: a Gaussian-weighted mean of the pixels more than
    2 px away from the hole (h, w coverage), so the lashes and lid margins
    ringing an eye do not bleed in and the fill takes the shading of the
    skin around it, without a seam.
    """
    known = 1.0 - ndimage.maximum_filter(hole, size=5)
    weight = ndimage.gaussian_filter(known, sigma_px, mode="nearest")
    total = ndimage.gaussian_filter(source * known[..., None], (sigma_px, sigma_px, 0), mode="nearest")
    return (total / np.maximum(weight, 1e-6)[..., None]).astype(np.float32)


def fill_eyes(
    canvas: Canvas,
    source: np.ndarray,
    src_landmarks: np.ndarray,
    dst_landmarks: np.ndarray,
    frame: FaceFrame,
    closure: float,
    palette: Palette,
) -> None:
    """Slide the lids over the photo's eyeballs; in a blink, cover the eye with lid skin.

    canvas, src_landmarks, dst_landmarks, frame: as in :func:`fill_mouth`.
    source: (S, S, 3) float32, the photo's crop (the skin a lid is painted with).
    closure: AU45 / 5, in 0..1.

    Where the photo's and the moved eye opening overlap, the eyeball shows
    as photographed. A closing lid is painted with the skin around the eye
    (:func:`_skin_around`) from the photo's upper lid line, raised by
    :data:`LID_MARGIN_IOD` (the lashes above dlib's lid points must not stay
    behind or be stretched down), to the moved upper lid; near a full blink
    the sliver still open goes to skin too. A lash line with a soft shadow
    follows the moved upper lid.
    """
    shape = canvas.alpha.shape
    for eye in (EYE_LEFT, EYE_RIGHT):
        if np.array_equal(dst_landmarks[eye], src_landmarks[eye]):
            continue
        lid = eye[:4]  # a corner, the two upper-lid points, the other corner
        margin_px = LID_MARGIN_IOD * frame.iod_px * min(1.0, closure / LID_MARGIN_FULL_CLOSURE)
        photo_lid = src_landmarks[lid] + margin_px * frame.up
        sigma_px = LID_SMOOTHING_IOD * frame.iod_px
        points = np.concatenate([photo_lid, src_landmarks[eye], dst_landmarks[eye]])
        rows, cols = bounding_slices(points, shape, margin_px=int(np.ceil(3.0 * sigma_px)) + 3)
        photo_opening = polygon_coverage(src_landmarks[eye], shape)[rows, cols]
        still_open = polygon_coverage(dst_landmarks[eye], shape)[rows, cols]
        canvas.show_photo_in_place(rows, cols, photo_opening * still_open)
        if closure >= BLINK_PAINT_MIN:
            cover = polygon_coverage(np.concatenate([photo_lid, dst_landmarks[lid][::-1]]), shape)[rows, cols]
            last_sliver = still_open * _smoothstep((closure - BLINK_SKIN_START) / (1.0 - BLINK_SKIN_START))
            paint = np.minimum(cover + last_sliver, 1.0)  # they meet at the moved lid: a pixel on it has both
            canvas.paint(
                rows, cols, _skin_around(source[rows, cols], np.maximum(paint, photo_opening), sigma_px), paint
            )
            for width, opacity in ((LASH_SHADOW_WIDTH_PX, LASH_SHADOW_OPACITY), (LASH_WIDTH_PX, LASH_OPACITY)):
                line = polyline_coverage(dst_landmarks[lid], shape, width)[rows, cols]
                canvas.paint(rows, cols, palette.lash, opacity * closure * line)
