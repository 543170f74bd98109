"""Real-data loading: OpenFace CSVs beside recordings become weighted hop-rate labels."""

import wave
from pathlib import Path

import numpy as np
import pytest

from engine.au import AU_NAMES, au_index
from models.data.openface import OpenFaceError, find_pairs, load_openface_pair, read_openface_csv

FPS = 30


def write_csv(path: Path, n_frames: int, *, lost: range = range(0), low_confidence: range = range(0)) -> Path:
    """An OpenFace-style CSV (leading spaces after commas, as OpenFace 2.x writes them); AU26 ramps 0..5."""
    columns = ["frame", "face_id", "timestamp", "confidence", "success"]
    columns += [f"{name}_r" for name in AU_NAMES] + ["AU01_c", "AU28_c"]
    lines = [", ".join(columns)]
    for i in range(n_frames):
        aus = np.zeros(len(AU_NAMES))
        aus[au_index("AU26")] = 5.0 * i / (n_frames - 1)
        success = 0 if i in lost else 1
        confidence = 0.3 if i in low_confidence else 0.98
        values = [i + 1, 0, i / FPS, confidence, success, *aus, 1, 0]
        lines.append(", ".join(f"{v:g}" for v in values))
    path.write_text("\n".join(lines) + "\n")
    return path


def write_wav(path: Path, seconds: float, rate: int = 44_100) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.sin(2 * np.pi * 220 * t) * 8000).astype("<i2").tobytes())
    return path


def test_labels_follow_the_csv_and_bad_frames_are_masked(tmp_path: Path) -> None:
    write_wav(tmp_path / "talk.wav", 2.0)
    write_csv(tmp_path / "talk.csv", 2 * FPS, lost=range(20, 30), low_confidence=range(40, 43))
    (tmp_path / "orphan.wav").write_bytes((tmp_path / "talk.wav").read_bytes())
    pairs = find_pairs(tmp_path)
    assert [media.name for media, _ in pairs] == ["talk.wav"]
    item = load_openface_pair(*pairs[0])
    n_hops = item.au.shape[0]
    assert n_hops == 1 + (32_000 - 400) // 160 and item.weight.shape == (n_hops,)
    centre_s = (np.arange(n_hops) * 160 + 200) / 16_000
    jaw = item.au[:, au_index("AU26")]
    valid = item.weight > 0
    # the ramp is linear in time, so interpolated labels sit on it wherever they are valid
    np.testing.assert_allclose(jaw[valid], np.clip(5.0 * centre_s[valid] * FPS / (2 * FPS - 1), 0, 5), atol=0.02)
    lost_hops = (centre_s > 20.5 / FPS + 0.1) & (centre_s < 28.5 / FPS - 0.1)
    assert lost_hops.any() and not valid[lost_hops].any()
    assert valid[centre_s < 0.5].all()


def test_low_confidence_frames_are_not_valid(tmp_path: Path) -> None:
    track = read_openface_csv(write_csv(tmp_path / "a.csv", 10, low_confidence=range(3, 5)))
    assert track.valid.tolist() == [True] * 3 + [False] * 2 + [True] * 5


def test_unusable_files_name_themselves(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("frame, timestamp, AU01_r\n1, 0.0, 1.0\n")
    with pytest.raises(OpenFaceError, match=r"bad\.csv.*missing columns .*confidence"):
        read_openface_csv(bad)
    with pytest.raises(OpenFaceError, match="no media file"):
        find_pairs(tmp_path)
