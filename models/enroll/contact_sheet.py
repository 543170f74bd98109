"""A grid of renders with their AUs written under each, for looking at the synthesizer's output."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw

from engine.avatar.warp.displacements import AU_NAMES, au_vector
from models.enroll.synthesizer import ExpressionSynthesizer

AuSpec = Mapping[str, float] | np.ndarray
"""{"AU12": 5.0, ...} (unnamed AUs 0) or a (17,) vector in AU_NAMES order."""

LABEL_HEIGHT_PX = 24


def _vector(spec: AuSpec) -> np.ndarray:
    return au_vector(spec) if isinstance(spec, Mapping) else np.asarray(spec, dtype=np.float64)


def _label(vector: np.ndarray) -> str:
    active = [f"{name[2:]}:{value:.1f}" for name, value in zip(AU_NAMES, vector, strict=True) if value > 0]
    return " ".join(active) or "zeros"


def contact_sheet(
    synth: ExpressionSynthesizer, au_list: Sequence[AuSpec], *, columns: int = 6, scale: int = 2
) -> np.ndarray:
    """Render each AU spec and tile the results: (rows * (128*scale + 24), columns * 128*scale, 3) uint8.

    Each tile is upscaled ``scale`` times (nearest neighbour, so pixels stay
    visible) and labelled with its non-zero AUs, two lines at most.
    """
    tile = synth.crop.shape[0] * scale
    rows = -(-len(au_list) // columns)
    sheet = Image.new("RGB", (columns * tile, rows * (tile + LABEL_HEIGHT_PX)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, spec in enumerate(au_list):
        vector = _vector(spec)
        x, y = (i % columns) * tile, (i // columns) * (tile + LABEL_HEIGHT_PX)
        render = Image.fromarray(synth.render(vector)).resize((tile, tile), Image.Resampling.NEAREST)
        sheet.paste(render, (x, y))
        words = _label(vector).split(" ")
        draw.text((x + 2, y + tile + 1), " ".join(words[:4]), fill=(0, 0, 0))
        draw.text((x + 2, y + tile + 12), " ".join(words[4:8]), fill=(0, 0, 0))
    return np.asarray(sheet)
