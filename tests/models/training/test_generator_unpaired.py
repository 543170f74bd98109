"""The reference unpaired trainer and its data reader, on a tiny synthetic face set written here."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.au import AU_NAMES
from models.ganimation.io import load_generator
from models.ganimation.net import GeneratorConfig
from models.training.face_au_data import FaceAuData, FaceDataError
from models.training.unpaired_trainer import UnpairedConfig, learning_rate, train_unpaired

N_IMAGES = 10
# OpenFace FaceLandmarkImg style: a space after each comma, more columns than the AUs.
HEADER = ", ".join(["face", "confidence", *(f"{name}_r" for name in AU_NAMES), "AU01_c"])


def _write_images(folder: Path, size_px: int = 64) -> None:
    """Blobs of varying colour, size_px square (not 128: the reader resizes)."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:size_px, :size_px]
    for i in range(N_IMAGES):
        blob = ((x - size_px / 2) ** 2 + (y - size_px / 2) ** 2) < (size_px / (3 + i % 3)) ** 2
        image = np.where(blob[..., None], rng.integers(0, 256, 3), rng.integers(0, 256, 3)).astype(np.uint8)
        Image.fromarray(image).save(folder / f"face{i:02d}.png")


def _aus(i: int) -> np.ndarray:
    return np.linspace(0, 5, len(AU_NAMES))[::-1] if i % 2 else np.linspace(0, 5, len(AU_NAMES))


@pytest.fixture
def per_image_csvs(tmp_path: Path) -> tuple[Path, Path]:
    images, tables = tmp_path / "images", tmp_path / "aus"
    _write_images(images)
    tables.mkdir()
    for i in range(N_IMAGES):
        rows = [HEADER, ", ".join(["0", "0.4", *map(str, np.zeros(len(AU_NAMES))), "0"])]  # a weaker face first
        rows.append(", ".join(["1", "0.98", *map(str, _aus(i)), "1"]))
        (tables / f"face{i:02d}.csv").write_text("\n".join(rows) + "\n")
    (tables / "stray.csv").write_text(HEADER + "\n")  # no such image: ignored
    return images, tables


def test_reads_per_image_openface_csvs(per_image_csvs: tuple[Path, Path]) -> None:
    data = FaceAuData.load(*per_image_csvs)
    assert len(data) == N_IMAGES
    np.testing.assert_allclose(data.aus[1], _aus(1), rtol=1e-6)  # the confident row
    assert data.image(0).shape == (128, 128, 3) and data.image(0).dtype == np.uint8


def test_reads_one_csv_with_a_file_column(tmp_path: Path) -> None:
    images = tmp_path / "images"
    _write_images(images)
    rows = ["file, success, " + ", ".join(f"{name}_r" for name in AU_NAMES)]
    rows += [f"face{i:02d}.png, {int(i != 3)}, " + ", ".join(map(str, _aus(i))) for i in range(N_IMAGES)]
    (tmp_path / "aus.csv").write_text("\n".join(rows) + "\n")
    data = FaceAuData.load(images, tmp_path / "aus.csv")
    assert len(data) == N_IMAGES - 1  # success 0 is left out
    assert all(path.name != "face03.png" for path in data.paths)


def test_missing_au_columns_are_named(tmp_path: Path) -> None:
    images = tmp_path / "images"
    _write_images(images)
    (tmp_path / "aus.csv").write_text("file, AU01_r\nface00.png, 1\n")
    with pytest.raises(FaceDataError, match="AU02_r"):
        FaceAuData.load(images, tmp_path / "aus.csv")


def test_reference_learning_rate_schedule() -> None:
    config = UnpairedConfig()  # 20 epochs constant, 10 decaying
    rates = [learning_rate(config, epoch) / config.lr for epoch in range(30)]
    assert rates[:21] == [1.0] * 21
    assert rates[21:] == pytest.approx([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])


@pytest.mark.slow
def test_a_few_steps_give_finite_losses_and_weights(per_image_csvs: tuple[Path, Path], tmp_path: Path) -> None:
    tiny = GeneratorConfig(conv_dim=8, repeat_num=1)
    config = UnpairedConfig(epochs=2, decay_epochs=1, batch_size=2, threads=1, critic_width=8, model=tiny)
    # 10 images, batches of 2: 5 critic steps per epoch, so the generator steps once per epoch
    history = train_unpaired(FaceAuData.load(*per_image_csvs), tmp_path / "run", config, progress=False)
    assert [record["epoch"] for record in history["epochs"]] == [1, 2]
    for record in history["epochs"]:
        for name in ("d_wasserstein", "d_au", "d_gp", "g_critic", "g_au", "g_cycle", "mask_mean"):
            assert np.isfinite(record[name]), name
    assert json.loads((tmp_path / "run" / "history.json").read_text())["images"] == N_IMAGES
    _, loaded, _ = load_generator(tmp_path / "run" / "generator.pth")
    assert loaded == config.model
    assert (tmp_path / "run" / "generator.onnx").is_file()
