"""Corpus generation: readable shards, byte-for-byte reproducibility, clean splits."""

from pathlib import Path

import numpy as np
import pytest

from engine.audio import SAMPLE_RATE_HZ
from models.data import text
from models.data.corpus import (
    SPLITS,
    CorpusConfig,
    generate_corpus,
    iter_shard,
    iter_utterances,
    make_utterance,
    read_manifest,
)
from models.data.timing import n_hops

SMALL = {"duration_range_s": (1.0, 2.5), "progress": False}


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_tiny_corpus_writes_readable_shards(tmp_path: Path) -> None:
    manifest = generate_corpus(tmp_path / "c", n_utterances=3, seed=0, **SMALL)
    assert manifest == read_manifest(tmp_path / "c")
    assert sum(manifest["splits"].values()) == 3
    assert manifest["au_names"][0] == "AU01" and len(manifest["au_names"]) == 17

    utterances = list(iter_utterances(tmp_path / "c"))
    assert len(utterances) == 3
    for u in utterances:
        assert u.audio.dtype == np.float32 and u.audio.ndim == 1
        assert u.au.dtype == np.float32 and u.au.shape == (n_hops(u.audio.size), 17)
        assert u.meta["split"] in SPLITS
        assert 0.5 < u.audio.size / SAMPLE_RATE_HZ < 4.0
        assert u.meta["duration_s"] == u.audio.size / SAMPLE_RATE_HZ
        assert u.meta["text"] and u.meta["phonemes"]
        assert u.au[:, 14].max() > 1.0  # AU25: the lips part somewhere
        # Silence well before the first phoneme (beyond anticipation) is neutral.
        first_ms = u.meta["phonemes"][0][1]
        assert first_ms >= u.meta["lead_silence_ms"]
        quiet_hops = max(int((first_ms - 250.0 - 12.5) // 10.0) + 1, 0)
        assert np.abs(u.au[:quiet_hops]).max(initial=0.0) < 0.05


def test_same_seed_same_bytes_other_seed_other_corpus(tmp_path: Path) -> None:
    generate_corpus(tmp_path / "a", n_utterances=3, seed=5, **SMALL)
    generate_corpus(tmp_path / "b", n_utterances=3, seed=5, **SMALL)
    generate_corpus(tmp_path / "c", n_utterances=3, seed=6, **SMALL)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    a = [u.meta["text"] for u in iter_utterances(tmp_path / "a")]
    c = [u.meta["text"] for u in iter_utterances(tmp_path / "c")]
    assert a != c


@pytest.mark.slow
def test_worker_processes_do_not_change_the_output(tmp_path: Path) -> None:
    generate_corpus(tmp_path / "one", n_utterances=4, seed=9, workers=1, **SMALL)
    generate_corpus(tmp_path / "two", n_utterances=4, seed=9, workers=2, **SMALL)
    assert _files(tmp_path / "one") == _files(tmp_path / "two")


def test_splits_share_no_voice_and_no_sentence() -> None:
    config = CorpusConfig(
        n_utterances=40,
        seed=3,
        held_out_voices=("m7", "f4"),
        held_out_voice_fraction=0.3,
        held_out_text_fraction=0.3,
        duration_range_s=(1.0, 2.0),
        attempts=2,
    )
    metas = [make_utterance(config, i).meta for i in range(config.n_utterances)]
    assert {m["split"] for m in metas} == set(SPLITS)
    for m in metas:
        held_voice = m["variant"] in config.held_out_voices
        assert held_voice == (m["split"] == "heldout_voice")
        for sentence in m["sentences"]:
            assert text.is_held_out(sentence, 0.3) == (m["split"] == "heldout_text")


def test_utterance_depends_only_on_seed_and_index() -> None:
    config = CorpusConfig(n_utterances=10, seed=11, duration_range_s=(1.0, 2.0))
    late = make_utterance(config, 7)
    make_utterance(config, 2)
    again = make_utterance(config, 7)
    np.testing.assert_array_equal(late.audio, again.audio)
    np.testing.assert_array_equal(late.au, again.au)
    assert late.meta == again.meta


def test_refuses_to_mix_with_an_existing_corpus(tmp_path: Path) -> None:
    generate_corpus(tmp_path, n_utterances=1, seed=0, **SMALL)
    with pytest.raises(FileExistsError):
        generate_corpus(tmp_path, n_utterances=1, seed=1, **SMALL)
    manifest = generate_corpus(tmp_path, n_utterances=2, seed=1, overwrite=True, **SMALL)
    assert sum(manifest["splits"].values()) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["manifest.json"] + [s["file"] for s in manifest["shards"]]
    )


def test_shards_load_without_pickle(tmp_path: Path) -> None:
    manifest = generate_corpus(tmp_path, n_utterances=2, seed=2, utterances_per_shard=1, **SMALL)
    assert len(manifest["shards"]) == 2
    for shard in manifest["shards"]:
        with np.load(tmp_path / shard["file"], allow_pickle=False) as data:
            assert set(data.files) == {"audio", "audio_offsets", "au", "au_offsets", "meta"}
        assert len(list(iter_shard(tmp_path / shard["file"]))) == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"held_out_voices": ("nobody",)},
        {"held_out_text_fraction": 0.0},
        {"variants": ("m1",), "held_out_voices": ("m1",)},
        {"languages": ("xx",)},
    ],
)
def test_bad_settings_fail_before_any_work(tmp_path: Path, bad: dict) -> None:
    with pytest.raises(ValueError):
        generate_corpus(tmp_path, n_utterances=1, seed=0, **SMALL, **bad)
    assert not list(tmp_path.iterdir())


def test_text_split_is_stable_and_sized() -> None:
    rng = np.random.default_rng(0)
    assert text.is_held_out("Really?", 0.5) == text.is_held_out("Really?", 0.5)
    sentences = {text._sentence(rng) for _ in range(3000)}
    share = np.mean([text.is_held_out(s, 0.1) for s in sentences])
    assert 0.06 < share < 0.14
    picked = text.sample_sentences(rng, target_words=30, held_out=True, held_out_fraction=0.1)
    assert sum(len(s.split()) for s in picked) >= 30
    assert all(text.is_held_out(s, 0.1) for s in picked)
