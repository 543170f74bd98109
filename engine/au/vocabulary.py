"""The 17 facial action units the engine estimates and renders, in one fixed order.

The order is OpenFace 2.x's ``AUxx_r`` intensity columns (AU28 has no
intensity there), and every array of AUs in the engine, the models, the wire
protocol and the checkpoints uses it. Intensities are FACS-style, 0..5.
"""

AU_NAMES: tuple[str, ...] = (
    "AU01",
    "AU02",
    "AU04",
    "AU05",
    "AU06",
    "AU07",
    "AU09",
    "AU10",
    "AU12",
    "AU14",
    "AU15",
    "AU17",
    "AU20",
    "AU23",
    "AU25",
    "AU26",
    "AU45",
)
N_AUS = len(AU_NAMES)
AU_MAX_INTENSITY = 5.0


def au_index(name: str) -> int:
    """Position of an AU (``"AU12"`` or ``"12"``) in :data:`AU_NAMES`."""
    key = name.upper()
    if not key.startswith("AU"):
        key = f"AU{int(key):02d}"
    try:
        return AU_NAMES.index(key)
    except ValueError:
        raise ValueError(f"unknown action unit {name!r}; known: {', '.join(AU_NAMES)}") from None
