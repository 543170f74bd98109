"""One training utterance for CAUSE: speech and its AU labels on the mel hop grid.

Every source of training data (the synthetic espeak corpus, OpenFace on real
videos) produces these; the trainer consumes them.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LabeledAudio:
    """audio: (n_samples,) float32 16 kHz; au: (n_hops, 17) 0..5 at 100 Hz
    (hop t = samples [160 t, 160 t + 400)); weight: (n_hops,) in 0..1, 0 where
    the label is unknown (e.g. OpenFace lost the face)."""

    audio: np.ndarray
    au: np.ndarray
    weight: np.ndarray
