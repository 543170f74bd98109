"""How well an enrolled generator reproduces the synthesizer: fidelity numbers, a look-at grid, a face check.

The reference is the synthesizer's render of the same AU vector from the same
crop (:mod:`models.training.enroll_data`); the generator can at best match
it. Every score comes with what the unchanged crop scores ("identity"): a
generator that ignores its AUs gets that much for free, since most of a face
does not move.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from engine.avatar import NoFaceError, detect_face
from engine.avatar.face68 import N_LANDMARKS
from engine.avatar.identity import descriptor_distance
from engine.avatar.landmarks import face_descriptor
from engine.avatar.warp.displacements import au_vector
from kernels.layers import FaceLayers
from models.ganimation.net import Generator, blend
from models.training.enroll_data import Enrollment, aus_to_condition, tensor_to_images
from models.training.metrics import psnr_db
from models.training.ssim import ssim

REGIONS: dict[str, np.ndarray] = {"mouth": np.arange(48, 68), "eyes": np.arange(36, 48)}
"""Landmarks (dlib 68) outlining the regions whose error is reported on its own."""
REGION_MARGIN_IOD = 0.15
"""A region is the box around its landmarks, neutral and moved, widened by this much (inter-ocular distances)."""
IDENTITY_VECTORS = 16
"""Held-out vectors whose identity distance is measured (the first ones): ~0.1 s a frame here."""
FACE_IOU_MIN = 0.5
"""A face detected in a composed frame counts only if it overlaps the portrait's face box this much."""

GRID_INTENSITIES = (0.0, 2.5, 5.0)
GRID_ROWS: dict[str, tuple[str, ...]] = {
    "AU01 inner brow": ("AU01",),
    "AU04 brow lower": ("AU04",),
    "AU12 lip corners": ("AU12",),
    "AU25 lips part": ("AU25",),
    "AU26 jaw drop": ("AU26",),
    "AU45 blink": ("AU45",),
    "smile 6+12": ("AU06", "AU12"),
    "surprise 1+2+5+26": ("AU01", "AU02", "AU05", "AU26"),
}
"""Rows of the grid: each AU (or AU combination) at every intensity of GRID_INTENSITIES."""
GRID_LABEL_WIDTH_PX = 112
GRID_HEADER_PX = 16


def generate(
    generator: Generator, enrollment: Enrollment, aus: np.ndarray, *, batch_size: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """The generator's faces for aus (N, 17) intensities 0..5, from the enrolled crop.

    Returns images (N, 128, 128, 3) uint8 (blended, rounded) and attention
    masks (N, 128, 128) float32 in [0, 1] (1 keeps the input pixel).
    """
    was_training = generator.training
    generator.eval()
    source = enrollment.input_image()
    images, masks = [], []
    with torch.inference_mode():
        for start in range(0, len(aus), batch_size):
            condition = aus_to_condition(aus[start : start + batch_size])
            inputs = source.expand(condition.shape[0], -1, -1, -1)
            color, mask = generator(inputs, condition)
            images.append(tensor_to_images(blend(inputs, color, mask)))
            masks.append(mask[:, 0].numpy())
    generator.train(was_training)
    return np.concatenate(images), np.concatenate(masks)


def _region_boxes(enrollment: Enrollment, aus: np.ndarray) -> dict[str, list[tuple[slice, slice]]]:
    """Per region, one (rows, cols) box per AU vector, covering its landmarks before and after moving."""
    synth = enrollment.synthesizer
    margin = REGION_MARGIN_IOD * synth.frame.iod_px
    size = enrollment.crop.shape[0]
    boxes: dict[str, list[tuple[slice, slice]]] = {name: [] for name in REGIONS}
    for vector in aus:
        moved = synth.moved_points(vector)[:N_LANDMARKS]
        for name, index in REGIONS.items():
            points = np.concatenate([synth.landmarks[index], moved[index]])
            low = np.clip(np.floor(points.min(axis=0) - margin), 0, size).astype(int)
            high = np.clip(np.ceil(points.max(axis=0) + margin) + 1, 0, size).astype(int)
            boxes[name].append((slice(low[1], high[1]), slice(low[0], high[0])))
    return boxes


def _region_errors(images: np.ndarray, targets: np.ndarray, boxes: list[tuple[slice, slice]]) -> dict[str, float]:
    """Mean absolute error (8-bit levels) and PSNR (dB) over the pixels of all the boxes together."""
    differences = np.concatenate(
        [(image[box].astype(np.float64) - target[box]).ravel() for image, target, box in zip(images, targets, boxes)]
    )
    mse = float(np.mean(differences**2))
    return {
        "mae_levels": float(np.mean(np.abs(differences))),
        "psnr_db": float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse),
    }


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two (x, y, width, height) boxes."""
    width = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    overlap = width * height
    return overlap / (a[2] * a[3] + b[2] * b[3] - overlap)


def face_detection_rate(enrollment: Enrollment, images: np.ndarray) -> float:
    """Share of crops (N, 128, 128, 3) uint8 that, composed into the portrait, still show dlib a face.

    Each crop is pasted back as the engine does (``Avatar.compose``); the
    detection must overlap the portrait's face box (IoU >= FACE_IOU_MIN), so
    a box on the suit or background does not count. One dlib detection per frame.
    """
    avatar = enrollment.avatar
    box = avatar.face_box
    expected = (box.x, box.y, box.width, box.height)
    found = 0
    for image in images:
        color = image.transpose(2, 0, 1).astype(np.float32) / 127.5 - 1.0
        frame = avatar.compose(FaceLayers(color, np.zeros_like(color[:1]))).rgb
        try:
            face = detect_face(frame)
        except NoFaceError:
            continue
        found += _iou((face.x, face.y, face.width, face.height), expected) >= FACE_IOU_MIN
    return found / len(images)


def identity_distances(enrollment: Enrollment, images: np.ndarray) -> np.ndarray:
    """dlib descriptor distance from the portrait's face to each crop (N, 128, 128, 3) uint8 composed into it.

    Below SAME_PERSON_DISTANCE (0.6) dlib takes two faces for one person;
    """
    avatar = enrollment.avatar
    reference = face_descriptor(np.asarray(avatar.portrait), avatar.face_box)
    distances = []
    for image in images:
        color = image.transpose(2, 0, 1).astype(np.float32) / 127.5 - 1.0
        frame = avatar.compose(FaceLayers(color, np.zeros_like(color[:1]))).rgb
        distances.append(descriptor_distance(face_descriptor(frame, avatar.face_box), reference))
    return np.array(distances)


def evaluate_generator(
    generator: Generator, enrollment: Enrollment, aus: np.ndarray, *, targets: np.ndarray | None = None
) -> dict[str, Any]:
    """Fidelity of the generator to the synthesizer on aus (N, 17) intensities 0..5.

    targets: the synthesizer's renders of ``aus`` if already made.
    Returns a JSON-ready dict: ``psnr_db`` (from the mean squared error over
    all images, so the hardest expressions weigh most), ``psnr_min_db``
    (the worst image), ``ssim`` (mean), each with its ``identity_*`` value
    (the unchanged crop against the same targets); ``regions`` (mouth, eyes:
    MAE in 8-bit levels and PSNR inside the box around their landmarks);
    ``face_detected`` (share of frames in which dlib finds the face, for the
    generator and for the targets); ``mask_mean`` (mean attention, 1 = input
    kept); ``identity_distance`` (dlib face descriptor distance from the
    portrait, mean / p95 / max over the first IDENTITY_VECTORS vectors, for
    the generator and for the targets).
    """
    if targets is None:
        targets = enrollment.render(aus)
    images, masks = generate(generator, enrollment, aus)
    identity = np.broadcast_to(enrollment.crop, targets.shape)
    boxes = _region_boxes(enrollment, aus)
    return {
        "heldout_vectors": len(aus),
        "psnr_db": float(psnr_db(images, targets)),
        "identity_psnr_db": float(psnr_db(identity, targets)),
        "psnr_min_db": float(min(psnr_db(image, target) for image, target in zip(images, targets))),
        "identity_psnr_min_db": float(min(psnr_db(enrollment.crop, target) for target in targets)),
        "ssim": float(np.mean([ssim(image, target) for image, target in zip(images, targets)])),
        "identity_ssim": float(np.mean([ssim(enrollment.crop, target) for target in targets])),
        "regions": {
            name: {
                "generated": _region_errors(images, targets, region),
                "identity": _region_errors(identity, targets, region),
            }
            for name, region in boxes.items()
        },
        "face_detected": {
            "generated": face_detection_rate(enrollment, images),
            "targets": face_detection_rate(enrollment, targets),
        },
        "mask_mean": float(masks.mean()),
        "identity_distance": {
            name: {"mean": float(d.mean()), "p95": float(np.percentile(d, 95)), "max": float(d.max())}
            for name, d in (("generated", identity_distances(enrollment, images[:IDENTITY_VECTORS])),
                            ("targets", identity_distances(enrollment, targets[:IDENTITY_VECTORS])))
        },
    }  # fmt: skip


def heldout_psnr_db(generator: Generator, enrollment: Enrollment, aus: np.ndarray, targets: np.ndarray) -> float:
    """The headline number alone (PSNR over all of ``aus``, dB): cheap enough to track during training."""
    images, _ = generate(generator, enrollment, aus)
    return float(psnr_db(images, targets))  # a Python float: checkpoints load with weights_only


def format_table(metrics: Mapping[str, Any]) -> str:
    """A plain-text table of :func:`evaluate_generator`'s numbers beside the identity baseline."""
    rows = [
        ("PSNR, all held-out (dB)", metrics["psnr_db"], metrics["identity_psnr_db"]),
        ("PSNR, worst image (dB)", metrics["psnr_min_db"], metrics["identity_psnr_min_db"]),
        ("SSIM, mean", metrics["ssim"], metrics["identity_ssim"]),
    ]
    for name, region in metrics["regions"].items():
        generated, identity = region["generated"], region["identity"]
        rows.append((f"{name}: PSNR (dB)", generated["psnr_db"], identity["psnr_db"]))
        rows.append((f"{name}: MAE (8-bit levels)", generated["mae_levels"], identity["mae_levels"]))
    faces = metrics["face_detected"]
    rows.append(("face found in frame (share)", faces["generated"], faces["targets"]))
    if "identity_distance" in metrics:  # evaluations written before it was measured lack it
        identity = metrics["identity_distance"]
        rows.append(("identity distance p95 (dlib)", identity["generated"]["p95"], identity["targets"]["p95"]))
    lines = [f"{'held-out AU vectors: ' + str(metrics['heldout_vectors']):<30}{'generator':>12}{'baseline':>12}"]
    lines += [f"{label:<30}{ours:>12.3f}{baseline:>12.3f}" for label, ours, baseline in rows]
    lines.append("baseline: the unchanged crop (face and identity rows: the synthesizer's own frames)")
    return "\n".join(lines)


def expression_grid(generator: Generator, enrollment: Enrollment) -> np.ndarray:
    """An image to judge the generator by eye: one row per GRID_ROWS entry.

    Columns: the generator at each GRID_INTENSITIES value, then the
    synthesizer's target at the highest, then the attention mask there
    (white: the input pixel is kept). Returns (H, W, 3) uint8.
    """
    top = max(GRID_INTENSITIES)
    vectors = [au_vector({au: level for au in aus}) for aus in GRID_ROWS.values() for level in GRID_INTENSITIES]
    images, masks = generate(generator, enrollment, np.asarray(vectors, dtype=np.float32))
    targets = enrollment.render(np.asarray([au_vector({au: top for au in aus}) for aus in GRID_ROWS.values()]))
    tile = enrollment.crop.shape[0]
    headers = [f"AU = {level:g}" for level in GRID_INTENSITIES] + [f"target {top:g}", f"mask {top:g}"]
    sheet = Image.new(
        "RGB", (GRID_LABEL_WIDTH_PX + len(headers) * tile, GRID_HEADER_PX + len(GRID_ROWS) * tile), (255, 255, 255)
    )
    draw = ImageDraw.Draw(sheet)
    for column, header in enumerate(headers):
        draw.text((GRID_LABEL_WIDTH_PX + column * tile + 4, 2), header, fill=(0, 0, 0))
    n = len(GRID_INTENSITIES)
    for row, label in enumerate(GRID_ROWS):
        y = GRID_HEADER_PX + row * tile
        draw.text((4, y + tile // 2 - 6), label, fill=(0, 0, 0))
        mask = np.rint(masks[row * n + n - 1] * 255).astype(np.uint8)
        tiles = [*images[row * n : (row + 1) * n], targets[row], np.repeat(mask[..., None], 3, axis=2)]
        for column, picture in enumerate(tiles):
            sheet.paste(Image.fromarray(picture), (GRID_LABEL_WIDTH_PX + column * tile, y))
    return np.asarray(sheet)
