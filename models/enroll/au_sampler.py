"""Random AU vectors shaped like the ones the generator will be driven with.

At run time the generator mostly sees speech (CAUSE output: lips parting, jaw
opening and closing, the lips stretching and tightening, a little brow
emphasis), blinks from the blink model, and expression bias from the
session's sliders (smiles, surprise, frowns). Training pairs should cover the
same ground, weighted the same way, with some all-zero vectors: AUs are
absolute, so those teach the relaxed face (the photo's own smile taken away),
which is what a silent speaker shows.

Each sample picks one recipe by weight; each AU listed in the recipe is then
active with its probability, at an intensity uniform in its range; unlisted
AUs are 0.
"""

from __future__ import annotations

import numpy as np

from engine.avatar.warp.displacements import AU_NAMES, N_AUS

AuRange = tuple[float, float, float]
"""(probability active, lowest intensity, highest intensity)."""

RECIPES: dict[str, tuple[float, dict[str, AuRange]]] = {
    "neutral": (0.08, {}),
    "speech": (0.42, {
        "AU25": (0.9, 0.5, 4.0), "AU26": (0.75, 0.3, 4.5), "AU20": (0.2, 0.5, 3.0), "AU23": (0.2, 0.5, 3.0),
        "AU14": (0.15, 0.5, 2.5), "AU17": (0.15, 0.5, 2.5), "AU10": (0.15, 0.5, 2.0), "AU12": (0.15, 0.5, 2.0),
        "AU01": (0.1, 0.5, 2.5), "AU02": (0.1, 0.5, 2.5), "AU04": (0.08, 0.5, 2.0), "AU45": (0.08, 1.0, 5.0),
    }),
    "brows": (0.1, {
        "AU01": (0.7, 0.5, 5.0), "AU02": (0.6, 0.5, 5.0), "AU04": (0.35, 0.5, 5.0), "AU05": (0.2, 0.5, 3.0),
        "AU25": (0.3, 0.5, 2.5), "AU26": (0.2, 0.5, 2.5),
    }),
    "blink": (0.1, {
        "AU45": (1.0, 1.0, 5.0), "AU25": (0.35, 0.5, 3.0), "AU26": (0.3, 0.5, 3.0), "AU06": (0.1, 0.5, 2.0),
    }),
    "smile": (0.12, {
        "AU12": (1.0, 1.0, 5.0), "AU06": (0.8, 0.5, 4.0), "AU25": (0.5, 0.5, 3.0), "AU26": (0.3, 0.5, 2.5),
        "AU07": (0.2, 0.5, 2.5), "AU10": (0.2, 0.5, 2.5), "AU14": (0.2, 0.5, 2.5), "AU45": (0.05, 1.0, 5.0),
    }),
    "surprise": (0.06, {
        "AU01": (1.0, 2.0, 5.0), "AU02": (1.0, 2.0, 5.0), "AU05": (0.8, 1.0, 5.0), "AU25": (0.9, 1.0, 4.0),
        "AU26": (0.8, 1.0, 5.0),
    }),
    "negative": (0.12, {
        "AU04": (0.7, 1.0, 5.0), "AU07": (0.5, 1.0, 4.0), "AU09": (0.3, 1.0, 4.0), "AU10": (0.35, 1.0, 4.0),
        "AU15": (0.4, 1.0, 4.0), "AU17": (0.4, 1.0, 4.0), "AU20": (0.3, 1.0, 4.0), "AU23": (0.3, 1.0, 4.0),
        "AU25": (0.3, 0.5, 3.0),
    }),
}  # fmt: skip
"""name -> (weight, {AU: (probability, low, high)}); weights sum to 1."""


def sample_aus(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random AU vectors: (n, 17) float32 intensities in 0..5, AU_NAMES order.

    Deterministic given the generator's state.
    """
    names = list(RECIPES)
    weights = np.array([RECIPES[name][0] for name in names])
    choice = rng.choice(len(names), size=n, p=weights / weights.sum())
    aus = np.zeros((n, N_AUS), dtype=np.float32)
    for r, name in enumerate(names):
        rows = np.flatnonzero(choice == r)
        for au, (probability, low, high) in RECIPES[name][1].items():
            active = rng.random(len(rows)) < probability
            aus[rows, AU_NAMES.index(au)] = np.where(active, rng.uniform(low, high, len(rows)), 0.0)
    return aus
