"""The contact sheet tiles renders with labels."""

from __future__ import annotations

import numpy as np
from PIL import Image

from models.enroll.contact_sheet import LABEL_HEIGHT_PX, contact_sheet
from models.enroll.synthesizer import ExpressionSynthesizer


def test_sheet_tiles_renders(synth: ExpressionSynthesizer, astronaut_crop: np.ndarray) -> None:
    specs = [synth.photo_aus, {"AU12": 5}, np.full(17, 2.0)]  # the photo itself, then changes
    sheet = contact_sheet(synth, specs, columns=2, scale=2)
    assert sheet.dtype == np.uint8 and sheet.shape == (2 * (256 + LABEL_HEIGHT_PX), 512, 3)
    first = np.asarray(Image.fromarray(astronaut_crop).resize((256, 256), Image.NEAREST))
    np.testing.assert_array_equal(sheet[:256, :256], first)
    assert not np.array_equal(sheet[:256, 256:], first)
