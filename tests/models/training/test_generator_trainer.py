"""Enrolment training on the real astronaut crop: it learns, checkpoints, resumes and writes its outputs (tiny)."""

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from engine.avatar import NoFaceError, load_default_avatar
from models.checkpoints import load_generator
from models.ganimation import GeneratorConfig
from models.training import enroll_data
from models.training.enroll_data import Enrollment, training_aus
from models.training.generator_trainer import EnrollConfig, learning_rate, train_enrollment

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def enrollment() -> Enrollment:
    return Enrollment.from_avatar(load_default_avatar())


def tiny_config(steps: int, **changes: object) -> EnrollConfig:
    settings: dict[str, object] = dict(
        steps=steps, batch_size=4, lr=2e-3, eval_every=4, heldout_size=4, threads=1,
        model=GeneratorConfig(conv_dim=8, repeat_num=1),
    )  # fmt: skip
    return EnrollConfig(**(settings | changes))


def test_loss_falls_and_outputs_are_written(enrollment: Enrollment, tmp_path: Path) -> None:
    history = train_enrollment(enrollment, tmp_path, tiny_config(12), progress=False)
    losses = [record["train_l1"] for record in history["log"]]
    assert [record["step"] for record in history["log"]] == [4, 8, 12]
    assert losses[-1] < 0.7 * losses[0]
    for name in ("checkpoint-last.pt", "history.json", "generator.pth", "generator.onnx", "eval.json", "grid.png"):
        assert (tmp_path / name).is_file(), name

    generator, config, _ = load_generator(tmp_path / "generator.pth")
    assert config == GeneratorConfig(conv_dim=8, repeat_num=1)
    image, aus = enrollment.input_image(), torch.full((1, 17), 0.4)
    with torch.inference_mode():
        color, mask = generator(image, aus)
    session = ort.InferenceSession(str(tmp_path / "generator.onnx"), providers=["CPUExecutionProvider"])
    onnx_color, onnx_mask = session.run(["color", "mask"], {"images": image.numpy(), "aus": aus.numpy()})
    np.testing.assert_allclose(onnx_color, color.numpy(), atol=1e-4)
    np.testing.assert_allclose(onnx_mask, mask.numpy(), atol=1e-4)

    metrics = json.loads((tmp_path / "eval.json").read_text())
    assert metrics["heldout_vectors"] == 4 and np.isfinite(metrics["psnr_db"])
    assert history["eval"]["psnr_db"] == pytest.approx(metrics["psnr_db"])


def test_resume_continues_exactly(enrollment: Enrollment, tmp_path: Path) -> None:
    # 12 planned steps, 8 run: one stretch, or 4 + 4 with a resume (neither finishes, so no export).
    straight = train_enrollment(enrollment, tmp_path / "straight", tiny_config(12), stop_after_steps=8, progress=False)
    train_enrollment(enrollment, tmp_path / "resumed", tiny_config(12), stop_after_steps=4, progress=False)
    resumed = train_enrollment(
        enrollment, tmp_path / "resumed", tiny_config(12), resume=True, stop_after_steps=4, progress=False
    )
    assert not (tmp_path / "resumed" / "generator.pth").exists()
    assert [r["step"] for r in resumed["log"]] == [4, 8]
    np.testing.assert_allclose(
        [r["train_l1"] for r in resumed["log"]], [r["train_l1"] for r in straight["log"]], rtol=1e-5
    )
    a = torch.load(tmp_path / "straight" / "checkpoint-last.pt", weights_only=True)["nets"]["generator"]
    b = torch.load(tmp_path / "resumed" / "checkpoint-last.pt", weights_only=True)["nets"]["generator"]
    for name, tensor in a.items():
        torch.testing.assert_close(tensor, b[name], rtol=1e-5, atol=1e-6, msg=name)


def test_resume_refuses_other_settings(enrollment: Enrollment, tmp_path: Path) -> None:
    train_enrollment(enrollment, tmp_path, tiny_config(8), stop_after_steps=4, progress=False)
    with pytest.raises(ValueError, match="another configuration"):
        train_enrollment(enrollment, tmp_path, tiny_config(8, lr=1e-3), resume=True, progress=False)


def test_adversarial_steps_are_finite(enrollment: Enrollment, tmp_path: Path) -> None:
    config = tiny_config(4, adversarial=True, critic_width=8, eval_every=2, batch_size=2)
    history = train_enrollment(enrollment, tmp_path, config, stop_after_steps=2, progress=False)
    record = history["log"][-1]
    for name in ("train_l1", "d_wasserstein", "d_au", "d_gp", "g_critic", "g_au"):
        assert np.isfinite(record[name]), name


def test_the_portraits_face_box_guides_landmarks_when_the_crop_hides_the_face(
    enrollment: Enrollment, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = enroll_data.detect_landmarks

    def blind_detector(image: np.ndarray, face_box: object = None) -> np.ndarray:
        if face_box is None:
            raise NoFaceError("no face found")
        return real(image, face_box)

    monkeypatch.setattr(enroll_data, "detect_landmarks", blind_detector)
    fallback = Enrollment.from_avatar(enrollment.avatar)
    assert np.abs(fallback.landmarks - enrollment.landmarks).max() <= 2.0  # pixels of the 128 px crop


def test_batches_depend_only_on_seed_and_step() -> None:
    np.testing.assert_array_equal(training_aus(0, 5, 8), training_aus(0, 5, 8))
    assert not np.array_equal(training_aus(0, 5, 8), training_aus(0, 6, 8))
    assert not np.array_equal(training_aus(0, 5, 8), training_aus(1, 5, 8))


def test_learning_rate_is_constant_then_falls_linearly_to_zero() -> None:
    config = EnrollConfig(steps=300, lr=1e-3, decay_fraction=1 / 3)
    assert learning_rate(config, 0) == learning_rate(config, 199) == 1e-3
    assert learning_rate(config, 250) == pytest.approx(0.5e-3)
    assert learning_rate(config, 299) == pytest.approx(1e-3 / 100)
