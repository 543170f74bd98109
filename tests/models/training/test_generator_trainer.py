"""Enrolment training on the real astronaut crop: it learns, checkpoints, resumes and writes its outputs (tiny)."""

import dataclasses
import json
import os
import signal
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from engine.avatar import NoFaceError, load_default_avatar
from models.ganimation.io import load_generator
from models.ganimation.net import GeneratorConfig
from models.training import enroll_data, generator_trainer
from models.training.enroll_data import Enrollment, training_aus
from models.training.generator_trainer import EnrollConfig, RunExistsError, learning_rate, train_enrollment

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def enrollment() -> Enrollment:
    return Enrollment.from_avatar(load_default_avatar())


def tiny_config(steps: int, **changes: object) -> EnrollConfig:
    settings: dict[str, object] = dict(
        steps=steps, batch_size=4, lr=2e-3, eval_every=4, heldout_size=4, threads=1, init=None,
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
    config = EnrollConfig(steps=300, lr=1e-3, decay_fraction=1 / 3, init=None)
    assert learning_rate(config, 0) == learning_rate(config, 199) == 1e-3
    assert learning_rate(config, 250) == pytest.approx(0.5e-3)
    assert learning_rate(config, 299) == pytest.approx(1e-3 / 100)
    warm = dataclasses.replace(config, init="default", warmup_steps=10)
    assert learning_rate(warm, 0) == pytest.approx(1e-4) and learning_rate(warm, 4) == pytest.approx(5e-4)
    assert learning_rate(warm, 9) == learning_rate(warm, 199) == 1e-3


def interrupt_at(monkeypatch: pytest.MonkeyPatch, step: int, sig: signal.Signals = signal.SIGINT) -> None:
    """Send ``sig`` to this process while training step ``step`` (0-based) is being made."""
    real = generator_trainer.training_aus

    def sending(seed: int, at: int, batch_size: int) -> np.ndarray:
        if at == step:
            os.kill(os.getpid(), sig)
        return real(seed, at, batch_size)

    monkeypatch.setattr(generator_trainer, "training_aus", sending)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_saves_a_checkpoint_and_resume_finishes_exactly(
    enrollment: Enrollment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sig: signal.Signals
) -> None:
    straight = train_enrollment(enrollment, tmp_path / "straight", tiny_config(12), progress=False, say=str)
    interrupt_at(monkeypatch, 5, sig)
    said: list[str] = []
    stopped = train_enrollment(enrollment, tmp_path / "cut", tiny_config(12), progress=False, say=said.append)
    monkeypatch.undo()
    assert stopped["interrupted"] == sig.name and "eval" not in stopped
    assert torch.load(tmp_path / "cut" / "checkpoint-last.pt", weights_only=True)["step"] == 6  # its step finished
    assert not (tmp_path / "cut" / "generator.pth").exists()
    assert any("continue with --resume" in line for line in said)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored

    resumed = train_enrollment(enrollment, tmp_path / "cut", tiny_config(12), resume=True, progress=False, say=str)
    assert [r["step"] for r in resumed["log"]] == [4, 8, 12] and "interrupted" not in resumed
    np.testing.assert_allclose(
        [r["train_l1"] for r in resumed["log"]], [r["train_l1"] for r in straight["log"]], rtol=1e-5
    )
    assert resumed["eval"]["psnr_db"] == pytest.approx(straight["eval"]["psnr_db"], abs=1e-3)


def test_checkpoints_come_at_least_as_often_as_asked(
    enrollment: Enrollment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[int, int] = {}
    real = generator_trainer.training_aus

    def watching(seed: int, at: int, batch_size: int) -> np.ndarray:
        checkpoint = tmp_path / "checkpoint-last.pt"
        if checkpoint.is_file():
            seen[at] = torch.load(checkpoint, weights_only=True)["step"]
        return real(seed, at, batch_size)

    monkeypatch.setattr(generator_trainer, "training_aus", watching)
    train_enrollment(enrollment, tmp_path, tiny_config(8), checkpoint_every_s=0.0, progress=False, say=str)
    assert seen == {step: step for step in range(1, 8)}  # every step saved (the checks at 4 and 8 too)


def test_a_finished_or_unfinished_run_is_never_silently_replaced(enrollment: Enrollment, tmp_path: Path) -> None:
    train_enrollment(enrollment, tmp_path / "done", tiny_config(4), progress=False, say=str)
    finished = (tmp_path / "done" / "generator.pth").read_bytes()
    with pytest.raises(RunExistsError, match="finished enrolment.*--overwrite"):
        train_enrollment(enrollment, tmp_path / "done", tiny_config(4, seed=1), progress=False, say=str)
    assert (tmp_path / "done" / "generator.pth").read_bytes() == finished
    said: list[str] = []
    again = train_enrollment(
        enrollment, tmp_path / "done", tiny_config(4), resume=True, progress=False, say=said.append
    )
    assert "eval" in again and said == [f"{tmp_path / 'done'} holds a finished enrolment: nothing to resume"]
    train_enrollment(enrollment, tmp_path / "done", tiny_config(4, seed=1), overwrite=True, progress=False, say=str)
    assert (tmp_path / "done" / "generator.pth").read_bytes() != finished

    train_enrollment(enrollment, tmp_path / "half", tiny_config(8), stop_after_steps=4, progress=False, say=str)
    with pytest.raises(RunExistsError, match="unfinished enrolment.*--resume"):
        train_enrollment(enrollment, tmp_path / "half", tiny_config(8), progress=False, say=str)


def test_the_plan_is_said_before_the_first_step(
    enrollment: Enrollment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    said: list[str] = []
    real = generator_trainer.training_aus

    def first_step(seed: int, at: int, batch_size: int) -> np.ndarray:
        said.append(f"training step {at}")
        return real(seed, at, batch_size)

    monkeypatch.setattr(generator_trainer, "training_aus", first_step)
    train_enrollment(enrollment, tmp_path, tiny_config(4, target_psnr_db=45.0), progress=False, say=said.append)
    plan = said[0]
    assert said[1] == "training step 0"
    for words in (
        "width 8",
        "random weights (cold start)",
        "held-out PSNR >= 45 dB or step 4",
        "every 60 s",
        "SIGTERM",
    ):
        assert words in plan, words


def test_warm_start_begins_where_the_default_generator_is_and_stops_at_the_target(
    enrollment: Enrollment, tmp_path: Path
) -> None:
    model = GeneratorConfig(conv_dim=16, repeat_num=6)  # the enrolment base's shape (enroll_base.pth)
    warm = tiny_config(8, init="default", lr=5e-4, model=model, eval_every=1, heldout_size=8, target_psnr_db=38.0)
    history = train_enrollment(enrollment, tmp_path / "warm", warm, progress=False, say=str)
    cold = dataclasses.replace(warm, init=None, target_psnr_db=None)
    cold_history = train_enrollment(enrollment, tmp_path / "cold", cold, stop_after_steps=1, progress=False, say=str)
    # The default generator was enrolled on this very portrait: one (warm-up) step from it keeps its quality.
    assert history["log"][0]["heldout_psnr_db"] > cold_history["log"][0]["heldout_psnr_db"] + 15
    assert history["reached_target"] and history["steps_done"] == 1 and (tmp_path / "warm" / "generator.pth").is_file()
    assert "identity_distance" in history["eval"]
    with pytest.raises(ValueError, match="--width 16 --repeat-num 6"):
        train_enrollment(enrollment, tmp_path / "bad", tiny_config(4, init="default"), progress=False, say=str)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_both_precisions_learn_and_the_run_records_which(
    enrollment: Enrollment, tmp_path: Path, precision: str
) -> None:
    history = train_enrollment(enrollment, tmp_path, tiny_config(12, precision=precision), progress=False, say=str)
    losses = [record["train_l1"] for record in history["log"]]
    assert history["precision"] == precision
    assert json.loads((tmp_path / "history.json").read_text())["precision"] == precision
    assert losses[-1] < 0.7 * losses[0]


def test_auto_precision_is_bf16_only_where_the_cpu_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(generator_trainer, "native_bf16", lambda: False)
    assert generator_trainer.resolve_precision("auto") == "fp32"
    monkeypatch.setattr(generator_trainer, "native_bf16", lambda: True)
    assert generator_trainer.resolve_precision("auto") == "bf16"
    assert generator_trainer.resolve_precision("fp32") == "fp32"
    with pytest.raises(ValueError, match="choose one of auto, bf16, fp32"):
        generator_trainer.resolve_precision("fp16")
