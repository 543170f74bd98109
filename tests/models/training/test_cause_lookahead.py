"""The lookahead trade-off script: fine-tunes from one checkpoint at each lookahead and tables held-out quality."""

import json
from pathlib import Path

import pytest
import torch

from models.cause.io import load_cause, save_cause
from models.cause.net import CauseConfig, CauseNet
from models.data.corpus import generate_corpus
from models.training.cause_lookahead import main
from models.training.cause_trainer import BEST_NAME, CauseTrainConfig, train_cause
from models.training.corpus_items import corpus_items

pytestmark = pytest.mark.slow
TINY = CauseConfig(channels=32, dilations=(1, 2, 4, 1, 2, 4), lookahead_hops=2)


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    generate_corpus(folder, n_utterances=24, seed=4, progress=False, duration_range_s=(1.0, 2.5))
    return folder


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("init") / "cause.pt"
    save_cause(CauseNet(TINY).eval(), path)
    return path


def test_fine_tuning_starts_from_the_checkpoint_at_another_lookahead(
    tiny_corpus: Path, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    config = CauseTrainConfig(
        epochs=1,
        steps_per_epoch=1,
        batch_size=2,
        segment_hops=120,
        warmup_steps=1,
        lr=1e-12,
        augment=False,
        threads=1,
        model=CauseConfig(channels=32, dilations=(1, 2, 4, 1, 2, 4), lookahead_hops=0),
    )
    train = corpus_items(tiny_corpus, "train")
    history = train_cause(train, {}, tmp_path, config, init_from=tiny_checkpoint, progress=False)
    tuned, initial = load_cause(tmp_path / BEST_NAME), load_cause(tiny_checkpoint)
    assert tuned.config.lookahead_hops == 0 and history["init_from"] == str(tiny_checkpoint)
    for name, value in initial.state_dict().items():  # a step of 1e-12 leaves the weights where they started
        torch.testing.assert_close(tuned.state_dict()[name], value, rtol=0, atol=1e-6)


def test_the_script_writes_one_row_per_lookahead(tiny_corpus: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "lookahead"
    args = ["--corpus", str(tiny_corpus), "-o", str(out), "--init", str(tiny_checkpoint), "--lookaheads", "0", "2"]
    assert main([*args, "--smoke", "--threads", "1"]) == 0
    rows = json.loads((out / "lookahead.json").read_text())["rows"]
    assert [row["lookahead_hops"] for row in rows] == [2, 0, 2]  # the checkpoint as trained, then each fine-tune
    assert [row["latency_saved_ms"] for row in rows] == [0, 20, 0]
    for row in rows:
        assert -1 <= row["lip_sync"]["r_at_lag0"] <= 1
        assert abs(row["lip_sync"]["peak_lag_hops"]) <= 10
    assert "| fine-tuned at 0 | 0 hops | 20 ms |" in (out / "lookahead.md").read_text()


def test_a_lookahead_the_network_cannot_have_is_refused(tiny_corpus: Path, tiny_checkpoint: Path) -> None:
    args = ["--corpus", str(tiny_corpus), "-o", "/nonexistent", "--init", str(tiny_checkpoint), "--lookaheads", "999"]
    assert main(args) == 1
