"""The CAUSE training loop runs, learns, checkpoints, resumes and exports (tiny and quick)."""

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from models.cause.net import CauseConfig
from models.data.corpus import generate_corpus
from models.training.cause_trainer import CauseTrainConfig, train_cause
from models.training.corpus_items import corpus_items

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    generate_corpus(folder, n_utterances=24, seed=3, progress=False, duration_range_s=(1.0, 2.5))
    return folder


def tiny_config(epochs: int) -> CauseTrainConfig:
    return CauseTrainConfig(
        epochs=epochs,
        steps_per_epoch=12,
        batch_size=4,
        segment_hops=120,
        warmup_steps=4,
        lr=3e-3,
        augment=False,
        threads=1,
        model=CauseConfig(channels=32, dilations=(1, 2, 4, 1, 2, 4), lookahead_hops=2),
    )


def test_loss_falls_and_outputs_are_written(tiny_corpus: Path, tmp_path: Path) -> None:
    heldout = {"heldout_voice": corpus_items(tiny_corpus, "heldout_voice")}
    history = train_cause(corpus_items(tiny_corpus, "train"), heldout, tmp_path, tiny_config(3), progress=False)
    losses = [epoch["train_l1"] for epoch in history["epochs"]]
    assert losses[-1] < losses[0]
    for name in ("checkpoint-last.pt", "cause-best.pt", "cause_step.onnx", "history.json"):
        assert (tmp_path / name).is_file(), name
    assert json.loads((tmp_path / "history.json").read_text())["epochs"][0]["heldout"]["heldout_voice"]["hops"] > 0
    session = ort.InferenceSession(str(tmp_path / "cause_step.onnx"))
    assert session.get_modelmeta().custom_metadata_map["lookahead_hops"] == "2"


def test_resume_continues_where_it_stopped(tiny_corpus: Path, tmp_path: Path) -> None:
    items = corpus_items(tiny_corpus, "train")
    heldout = {"heldout_text": corpus_items(tiny_corpus, "heldout_text")}
    straight = train_cause(items, heldout, tmp_path / "straight", tiny_config(2), progress=False)
    train_cause(items, heldout, tmp_path / "resumed", tiny_config(2), stop_after_epochs=1, progress=False)
    resumed = train_cause(items, heldout, tmp_path / "resumed", tiny_config(2), resume=True, progress=False)
    assert [e["epoch"] for e in resumed["epochs"]] == [1, 2]
    np.testing.assert_allclose(
        [e["train_l1"] for e in resumed["epochs"]], [e["train_l1"] for e in straight["epochs"]], rtol=1e-5
    )
