"""Generator evaluation: SSIM matches scikit-image, the report has its fields, the grid its layout."""

import numpy as np
import pytest
import torch

from engine.avatar import load_default_avatar
from models.ganimation.net import Generator
from models.training.enroll_data import Enrollment, heldout_aus
from models.training.generator_eval import (
    GRID_HEADER_PX,
    GRID_INTENSITIES,
    GRID_LABEL_WIDTH_PX,
    GRID_ROWS,
    evaluate_generator,
    expression_grid,
    face_detection_rate,
    format_table,
)
from models.training.ssim import ssim


@pytest.fixture(scope="module")
def enrollment() -> Enrollment:
    return Enrollment.from_avatar(load_default_avatar())


@pytest.fixture(scope="module")
def tiny_generator() -> Generator:
    torch.manual_seed(0)
    return Generator(conv_dim=8, repeat_num=1).eval()


@pytest.mark.parametrize("channels", [None, 3])
def test_ssim_matches_scikit_image(channels: int | None) -> None:
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(0)
    shape = (40, 37) if channels is None else (40, 37, channels)  # odd sizes, not square
    a = rng.integers(0, 256, shape).astype(np.uint8)
    b = np.clip(a + rng.normal(0, 20, shape), 0, 255).astype(np.uint8)
    expected = metrics.structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255,
        channel_axis=None if channels is None else -1,
    )  # fmt: skip
    assert ssim(a, b) == pytest.approx(expected, abs=1e-9)
    assert ssim(a, a) == pytest.approx(1.0)


def test_evaluation_reports_every_field(enrollment: Enrollment, tiny_generator: Generator) -> None:
    metrics = evaluate_generator(tiny_generator, enrollment, heldout_aus(0, 3))
    assert metrics["heldout_vectors"] == 3
    for name in ("psnr_db", "identity_psnr_db", "psnr_min_db", "identity_psnr_min_db", "ssim", "identity_ssim"):
        assert np.isfinite(metrics[name]), name
    assert metrics["psnr_min_db"] <= metrics["psnr_db"]
    assert set(metrics["regions"]) == {"mouth", "eyes"}
    for region in metrics["regions"].values():
        assert set(region["generated"]) == set(region["identity"]) == {"mae_levels", "psnr_db"}
    assert 0.0 <= metrics["face_detected"]["generated"] <= 1.0
    assert metrics["face_detected"]["targets"] == 1.0  # the synthesizer keeps the face a face
    assert 0.0 <= metrics["mask_mean"] <= 1.0
    table = format_table(metrics)
    assert "PSNR, all held-out (dB)" in table and "mouth: MAE (8-bit levels)" in table


def test_a_blank_crop_shows_no_face(enrollment: Enrollment) -> None:
    grey = np.full((2, 128, 128, 3), 128, np.uint8)
    assert face_detection_rate(enrollment, grey) == 0.0
    assert face_detection_rate(enrollment, enrollment.crop[None]) == 1.0


def test_grid_has_a_tile_per_row_and_column(enrollment: Enrollment, tiny_generator: Generator) -> None:
    grid = expression_grid(tiny_generator, enrollment)
    columns = len(GRID_INTENSITIES) + 2  # then the target and the mask
    assert grid.shape == (GRID_HEADER_PX + len(GRID_ROWS) * 128, GRID_LABEL_WIDTH_PX + columns * 128, 3)
    assert grid.dtype == np.uint8
