"""A real face data set for the unpaired GANimation trainer: aligned face images with OpenFace AUs.

Images: a folder of face crops (PNG or JPEG), square, tight around the face
as GANimation's were (resized to 128x128 when they are another size).

AUs, in either of two layouts (``--aus``):

- a **folder of per-image CSVs**, ``<stem>.csv`` for image ``<stem>.jpg``
  (or ``.png``): what OpenFace's ``FaceLandmarkImg -fdir`` writes, and what
  the reference's ``data/prepare_au_annotations.py`` reads. When a CSV lists
  several faces the most confident row is used.
- **one CSV** with a ``file`` column naming each image (relative to the
  images folder) and the AU columns, one row per image.

Either way the columns ``AU01_r`` ... ``AU45_r`` (the 17 intensities, 0..5)
are required; OpenFace's leading spaces in header names are ignored. Rows
with ``success`` 0 are skipped when that column exists. Images without AUs,
and AUs without an image, are left out.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from engine.au import AU_MAX_INTENSITY, AU_NAMES
from engine.errors import EngineError

IMAGE_SIZE = 128
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
AU_COLUMNS = tuple(f"{name}_r" for name in AU_NAMES)
FILE_COLUMN = "file"


class FaceDataError(EngineError, ValueError):
    """A data set that cannot be used, with the file and the reason."""


def _rows(path: Path) -> Iterator[dict[str, str]]:
    """The CSV's rows as dicts, header names stripped; checks the AU columns are there."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = [name.strip() for name in next(reader, [])]
            missing = [name for name in AU_COLUMNS if name not in header]
            if missing:
                raise FaceDataError(f"{path}: missing AU columns {', '.join(missing)}")
            for values in reader:
                if values:
                    yield dict(zip(header, (value.strip() for value in values)))
    except (OSError, UnicodeDecodeError) as error:
        raise FaceDataError(f"{path}: cannot read ({error})") from error


def _aus(row: dict[str, str], path: Path) -> np.ndarray | None:
    """(17,) float32 intensities clipped to 0..5, or None for a failed or incomplete row."""
    if row.get("success", "1") in ("0", "0.0"):
        return None
    try:
        aus = np.array([float(row[name]) for name in AU_COLUMNS], dtype=np.float32)
    except (KeyError, ValueError) as error:
        raise FaceDataError(f"{path}: a row's AU values are not numbers ({error})") from error
    return np.clip(aus, 0.0, AU_MAX_INTENSITY) if np.isfinite(aus).all() else None


def _from_csv_folder(images: Path, folder: Path) -> list[tuple[Path, np.ndarray]]:
    by_stem = {path.stem: path for path in images.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES}
    items = []
    for table in sorted(folder.glob("*.csv")):
        if table.stem not in by_stem:
            continue
        candidates = [(row, aus) for row in _rows(table) if (aus := _aus(row, table)) is not None]
        if candidates:
            best = max(candidates, key=lambda item: float(item[0].get("confidence", "1") or 0))
            items.append((by_stem[table.stem], best[1]))
    return items


def _from_table(images: Path, table: Path) -> list[tuple[Path, np.ndarray]]:
    items = []
    for row in _rows(table):
        if FILE_COLUMN not in row:
            raise FaceDataError(f"{table}: no {FILE_COLUMN!r} column naming each row's image")
        image = images / row[FILE_COLUMN]
        aus = _aus(row, table)
        if aus is not None and image.is_file():
            items.append((image, aus))
    return items


@dataclass(frozen=True)
class FaceAuData:
    """Image paths and their AU vectors: paths[i] shows aus[i] (N, 17) float32 intensities 0..5."""

    paths: tuple[Path, ...]
    aus: np.ndarray

    @classmethod
    def load(cls, images: str | Path, aus: str | Path) -> FaceAuData:
        """Pair the images with their AUs (see the module docstring for the layouts).

        Raises FaceDataError when a folder or file is missing, a CSV lacks
        the AU columns, or no image has AUs.
        """
        images, aus = Path(images), Path(aus)
        if not images.is_dir():
            raise FaceDataError(f"{images}: not a folder of face images")
        if aus.is_dir():
            items = _from_csv_folder(images, aus)
        elif aus.is_file():
            items = _from_table(images, aus)
        else:
            raise FaceDataError(f"{aus}: neither a folder of per-image OpenFace CSVs nor a CSV file")
        if not items:
            raise FaceDataError(f"no image in {images} has usable AUs in {aus}")
        return cls(paths=tuple(path for path, _ in items), aus=np.stack([vector for _, vector in items]))

    def __len__(self) -> int:
        return len(self.paths)

    def image(self, index: int) -> np.ndarray:
        """Image ``index`` as (128, 128, 3) uint8 RGB (read from disk each time: data sets outgrow memory)."""
        path = self.paths[index]
        try:
            with Image.open(path) as opened:
                picture = opened.convert("RGB")
        except OSError as error:
            raise FaceDataError(f"{path}: cannot read the image ({error})") from error
        if picture.width != picture.height:
            raise FaceDataError(f"{path}: {picture.width}x{picture.height} is not square; crop faces square")
        if picture.width != IMAGE_SIZE:
            picture = picture.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BICUBIC)
        return np.asarray(picture)
