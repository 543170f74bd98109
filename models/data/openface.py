"""Real data: recordings with OpenFace 2.x ``FeatureExtraction`` CSVs, as CAUSE training items.

What people have is a folder of videos (or their audio tracks) and, for each,
the CSV OpenFace wrote: one row per video frame with ``timestamp`` (s),
``confidence`` (0..1), ``success`` (0/1) and the 17 intensity columns
``AU01_r`` ... ``AU45_r`` (0..5). This module pairs ``talk.mp4`` (or
``talk.wav``...) with ``talk.csv``, resamples the AU track to the model's
100 Hz hop rate and gives every hop a loss weight: 0 where OpenFace lost the
face (``success == 0``), was unsure (``confidence`` below a threshold), or
where no frame is near (gaps, before the first or after the last frame).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.au import AU_NAMES, N_AUS
from engine.audio import MelConfig, hop_count, load_audio_file
from engine.errors import EngineError
from models.data.labeled_audio import LabeledAudio

MEDIA_SUFFIXES = (".wav", ".flac", ".mp3", ".m4a", ".ogg", ".mp4", ".mkv", ".mov", ".avi", ".webm")
REQUIRED_COLUMNS = ("timestamp", "confidence", "success", *(f"{name}_r" for name in AU_NAMES))
DEFAULT_MIN_CONFIDENCE = 0.8
"""OpenFace's own visualisation hides tracking below about this confidence."""
MAX_GAP_S = 0.1
"""Hops farther than this from any valid frame get no label (a dropout, not a slow change)."""


class OpenFaceError(EngineError, ValueError):
    """A CSV or media file that cannot be used, with the file and the reason."""


@dataclass(frozen=True)
class OpenFaceTrack:
    """time_s: (N,) frame times; aus: (N, 17) intensities 0..5; valid: (N,) usable frames."""

    time_s: np.ndarray
    aus: np.ndarray
    valid: np.ndarray


def read_openface_csv(path: str | Path, *, min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> OpenFaceTrack:
    """Parse one FeatureExtraction CSV (header names may carry a leading space: they are stripped)."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as handle:
            header = [name.strip() for name in handle.readline().split(",")]
            rows = np.loadtxt(handle, delimiter=",", ndmin=2, dtype=np.float64)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise OpenFaceError(f"{path}: not a readable OpenFace CSV ({exc})") from exc
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise OpenFaceError(f"{path}: missing columns {', '.join(missing)}")
    if rows.size == 0:
        return OpenFaceTrack(np.zeros(0), np.zeros((0, N_AUS), np.float32), np.zeros(0, bool))
    if rows.shape[1] != len(header):
        raise OpenFaceError(f"{path}: rows have {rows.shape[1]} values but the header names {len(header)}")
    column = {name: rows[:, i] for i, name in enumerate(header)}
    aus = np.stack([column[f"{name}_r"] for name in AU_NAMES], axis=1).astype(np.float32)
    valid = (column["success"] > 0.5) & (column["confidence"] >= min_confidence) & np.isfinite(aus).all(axis=1)
    order = np.argsort(column["timestamp"], kind="stable")
    return OpenFaceTrack(column["timestamp"][order], np.clip(aus[order], 0.0, 5.0), valid[order])


def track_at_hops(track: OpenFaceTrack, n_hops: int, mel: MelConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """AUs (n_hops, 17) at each mel hop's centre time, linearly interpolated between valid frames,
    and the per-hop weight (n_hops,): 1 where a valid frame lies within ``MAX_GAP_S``, else 0."""
    mel = mel or MelConfig()
    centres = (np.arange(n_hops) * mel.hop_samples + mel.window_samples / 2) / mel.sample_rate_hz
    times, aus = track.time_s[track.valid], track.aus[track.valid]
    if times.size == 0:
        return np.zeros((n_hops, N_AUS), np.float32), np.zeros(n_hops, np.float32)
    labels = np.stack([np.interp(centres, times, aus[:, k]) for k in range(N_AUS)], axis=1).astype(np.float32)
    nearest = np.clip(np.searchsorted(times, centres), 1, max(1, times.size - 1))
    distance = np.minimum(
        np.abs(centres - times[nearest - 1]), np.abs(times[np.minimum(nearest, times.size - 1)] - centres)
    )
    weight = (distance <= MAX_GAP_S) & (centres >= times[0] - MAX_GAP_S) & (centres <= times[-1] + MAX_GAP_S)
    return labels, weight.astype(np.float32)


def load_openface_pair(
    media: str | Path, csv: str | Path, *, min_confidence: float = DEFAULT_MIN_CONFIDENCE
) -> LabeledAudio:
    """One recording's 16 kHz audio with its AU labels at the hop rate."""
    audio = load_audio_file(media)
    n_hops = hop_count(audio.size, MelConfig())
    labels, weight = track_at_hops(read_openface_csv(csv, min_confidence=min_confidence), n_hops)
    return LabeledAudio(audio=audio, au=labels, weight=weight)


def find_pairs(folder: str | Path, suffixes: Sequence[str] = MEDIA_SUFFIXES) -> list[tuple[Path, Path]]:
    """(media, csv) pairs in ``folder`` sharing a file stem, sorted; a media file without a CSV is skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise OpenFaceError(f"{folder}: not a folder")
    pairs = []
    for media in sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes):
        csv = media.with_suffix(".csv")
        if csv.is_file():
            pairs.append((media, csv))
    if not pairs:
        raise OpenFaceError(f"{folder}: no media file with a same-named OpenFace .csv beside it")
    return pairs
