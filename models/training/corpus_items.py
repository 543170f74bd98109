"""The synthetic corpus as training items."""

from pathlib import Path

import numpy as np

from models.data.corpus import iter_utterances
from models.data.labeled_audio import LabeledAudio


def corpus_items(corpus_dir: str | Path, split: str) -> list[LabeledAudio]:
    """Every utterance of one split, fully weighted (synthetic labels are never missing)."""
    return [
        LabeledAudio(audio=u.audio, au=u.au, weight=np.ones(u.au.shape[0], np.float32))
        for u in iter_utterances(corpus_dir, splits=(split,))
    ]
