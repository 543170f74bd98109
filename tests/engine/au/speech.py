"""Speech with known stressed syllables, spoken by espeak-ng (no recording needed)."""

from dataclasses import dataclass

import numpy as np

from models.data.espeak import synthesize

VOWELS = set("aeiouAEIOUV03@")
TEXT = (
    "The quick brown fox jumps over the lazy dog. I never said she stole my money, but someone did. "
    "Please remember to bring the yellow umbrella tomorrow."
)


@dataclass(frozen=True)
class StressedSpeech:
    """16 kHz float32 audio and the start times (s) of its stressed and unstressed vowels."""

    audio: np.ndarray
    stressed_s: list[float]
    unstressed_s: list[float]


def stressed_speech() -> StressedSpeech:
    result = synthesize(TEXT, voice="en-us")
    stressed, unstressed = [], []
    for phoneme in result.phonemes:
        core = phoneme.mnemonic.lstrip("',")
        if core and core[0] in VOWELS:
            (stressed if phoneme.mnemonic.startswith("'") else unstressed).append(phoneme.start_ms / 1000)
    return StressedSpeech(result.audio, stressed, unstressed)
