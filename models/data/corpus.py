"""The synthetic training corpus: espeak speech with rule-made AU labels, in shards.

``generate_corpus`` speaks generated English text with many espeak voices,
rates and pitches, labels every 10 ms hop with :func:`models.data.visemes.au_track`,
and writes shards plus a manifest. The audio is stored clean; training applies
:mod:`models.data.augment` on the fly, so every epoch hears new noise.

Splits, one per utterance:

- ``heldout_voice``: spoken by a variant in ``held_out_voices`` (any accent),
  with training texts: does the model generalise to an unseen speaker?
- ``heldout_text``: a training voice on held-out sentences
  (:func:`models.data.text.is_held_out`): unseen words and contexts?
- ``train``: training voices on training sentences. It shares no sentence
  and no voice variant with the two held-out splits.

Reproducible: utterance ``i`` depends only on ``(seed, i)`` and the settings,
never on worker count or order, and the shards are written with fixed zip
timestamps, so the same arguments give the same files byte for byte (on the
same espeak-ng and numpy versions, which the manifest records).

Layout of ``out_dir``: ``manifest.json`` (written last: its presence means
complete) and ``{split}-{k:05d}.npz`` shards. A shard holds ``audio``
(float32, all its utterances' 16 kHz samples end to end), ``audio_offsets``
(int64, n + 1), ``au`` (float32, (total hops, 17)), ``au_offsets`` (int64,
n + 1) and ``meta`` (uint8, UTF-8 JSON list of one dict per utterance: id,
split, voice, rate_wpm, pitch, pitch_range, text, sentences, phonemes [[mnemonic,
start_ms, end_ms], ...] and more). No pickles: ``np.load`` reads a shard
with ``allow_pickle=False``.
"""

from __future__ import annotations

import html
import io
import json
import multiprocessing
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from engine.au.vocabulary import AU_NAMES
from engine.audio import HOP_MS, SAMPLE_RATE_HZ, WINDOW_MS
from models.data import espeak
from models.data.espeak import Phoneme
from models.data.text import sample_sentences
from models.data.visemes import au_track

FORMAT_VERSION = 1
SPLITS: tuple[str, ...] = ("train", "heldout_voice", "heldout_text")
MANIFEST_NAME = "manifest.json"
_CHUNK = 4  # utterances per task sent to a worker process
# Each espeak call leaks about 2 KB (measured over 2000 calls); a worker is
# replaced after this many tasks so that long runs stay small.
_CHUNKS_PER_WORKER = 250

DEFAULT_LANGUAGES: tuple[str, ...] = (
    "en",
    "en-us",
    "en-gb-x-rp",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)
"""espeak's English accents (en-shaw, a spelling variant, is left out)."""

DEFAULT_VARIANTS: tuple[str, ...] = (
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "m8",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "Alex",
    "Alicia",
    "Andrea",
    "Andy",
    "Annie",
    "Denis",
    "Diogo",
    "Gene",
    "Henrique",
    "Hugo",
    "Jacky",
    "Lee",
    "Marco",
    "Michael",
    "Mike",
    "Reed",
    "Storm",
    "adam",
    "anika",
    "antonio",
    "aunty",
    "belinda",
    "benjamin",
    "boris",
    "david",
    "ed",
    "edward",
    "grandma",
    "grandpa",
    "gustave",
    "ian",
    "iven",
    "john",
    "klatt",
    "klatt2",
    "klatt3",
    "linda",
    "max",
    "michel",
    "miguel",
    "norbert",
    "paul",
    "pedro",
    "quincy",
    "rob",
    "robert",
    "sandro",
    "shelby",
    "steph",
    "travis",
    "victor",
    "zac",
)
"""Speaker variants that sound human. Left out: robots, whispers (no voicing:
no brow prosody), croaks and effects (Demonic, UniRobot, robosoft*, whisper*,
croak, caleb, announcer, fast, Tweaky, RicishayMax*, anikaRobot, kaukovalta,
Mr serious, AnxiousAndy, Gene2, Nguyen, Mario, marcelo, edward2, klatt4-6,
iven2-4, steph2-3, mike2, m*-only duplicates)."""

DEFAULT_HELD_OUT_VOICES: tuple[str, ...] = ("m7", "f4", "Annie", "david")
"""Two male and two female variants, formant and Klatt synthesis, never in train."""


@dataclass(frozen=True)
class CorpusConfig:
    """Everything that decides a corpus's content (recorded in its manifest)."""

    n_utterances: int
    seed: int
    held_out_voices: tuple[str, ...] = DEFAULT_HELD_OUT_VOICES
    held_out_voice_fraction: float = 0.1
    held_out_text_fraction: float = 0.1
    languages: tuple[str, ...] = DEFAULT_LANGUAGES
    variants: tuple[str, ...] = DEFAULT_VARIANTS
    rate_wpm_range: tuple[int, int] = (120, 220)
    pitch_range: tuple[int, int] = (25, 75)
    pitch_variation_range: tuple[int, int] = (20, 80)
    duration_range_s: tuple[float, float] = (1.0, 6.0)
    edge_silence_range_ms: tuple[float, float] = (50.0, 400.0)
    break_prob: float = 0.5
    break_range_ms: tuple[int, int] = (100, 600)
    utterances_per_shard: int = 200
    attempts: int = 8

    def check(self) -> None:
        """Raise ValueError on settings that cannot make a valid corpus."""
        if self.n_utterances < 1:
            raise ValueError(f"n_utterances must be >= 1, got {self.n_utterances}")
        missing = set(self.held_out_voices) - set(self.variants)
        if missing:
            raise ValueError(f"held-out voices {sorted(missing)} are not among the variants")
        if not set(self.variants) - set(self.held_out_voices):
            raise ValueError("every variant is held out: no training voice left")
        for name in ("held_out_voice_fraction", "held_out_text_fraction"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {getattr(self, name)}")
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {self.attempts}")
        if self.utterances_per_shard < 1:
            raise ValueError(f"utterances_per_shard must be >= 1, got {self.utterances_per_shard}")
        for language in self.languages:
            espeak.check_voice(language)
        for variant in self.variants:
            espeak.check_voice(f"{self.languages[0]}+{variant}")


@dataclass(frozen=True)
class Utterance:
    """One corpus item: ``audio`` (n_samples,) float32 16 kHz, ``au`` (n_hops, 17) float32 0..5."""

    audio: np.ndarray
    au: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)


def _utterance_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, index]))


def _ssml(sentences: Sequence[str], rng: np.random.Generator, config: CorpusConfig) -> str:
    """Sentences joined by espeak's own pauses or, sometimes, an explicit ``<break>``."""
    parts = [html.escape(sentences[0], quote=False)]
    for sentence in sentences[1:]:
        if rng.random() < config.break_prob:
            parts.append(f'<break time="{int(rng.integers(*config.break_range_ms, endpoint=True))}ms"/>')
        parts.append(html.escape(sentence, quote=False))
    return "<speak>" + " ".join(parts) + "</speak>"


def make_utterance(config: CorpusConfig, index: int) -> Utterance:
    """Utterance ``index`` of the corpus ``config`` describes (a pure function of both)."""
    rng = _utterance_rng(config.seed, index)
    held_out = set(config.held_out_voices)
    if rng.random() < config.held_out_voice_fraction:
        split = "heldout_voice"
        pool = list(config.held_out_voices)
    else:
        split = "heldout_text" if rng.random() < config.held_out_text_fraction else "train"
        pool = [v for v in config.variants if v not in held_out]
    variant = pool[int(rng.integers(len(pool)))]
    language = config.languages[int(rng.integers(len(config.languages)))]
    voice = f"{language}+{variant}"
    rate_wpm = int(rng.integers(*config.rate_wpm_range, endpoint=True))
    pitch = int(rng.integers(*config.pitch_range, endpoint=True))
    pitch_range = int(rng.integers(*config.pitch_variation_range, endpoint=True))
    lead_ms, trail_ms = (float(rng.uniform(*config.edge_silence_range_ms)) for _ in range(2))
    target_s = float(rng.uniform(*config.duration_range_s))
    lo_s, hi_s = config.duration_range_s

    # Speaking time ~ words / rate; pauses take about a fifth of it. Retry
    # with fresh sentences until the duration lands within 25 % of the
    # target, keeping the closest attempt inside the allowed range.
    speech_s = max(target_s - (lead_ms + trail_ms) / 1000.0, 0.3)
    target_words = max(1, round(0.8 * speech_s * rate_wpm / 60.0))
    best: tuple[float, list[str], str, espeak.Synthesis] | None = None
    for _ in range(config.attempts):
        sentences = sample_sentences(
            rng,
            target_words=target_words,
            held_out=split == "heldout_text",
            held_out_fraction=config.held_out_text_fraction,
        )
        ssml = _ssml(sentences, rng, config)
        synthesis = espeak.synthesize(
            ssml, voice=voice, rate_wpm=rate_wpm, pitch=pitch, pitch_range=pitch_range, ssml=True
        )
        total_s = synthesis.audio.size / SAMPLE_RATE_HZ + (lead_ms + trail_ms) / 1000.0
        in_range = lo_s <= total_s <= hi_s
        miss = abs(total_s - target_s) / target_s + (0.0 if in_range else 10.0)
        if best is None or miss < best[0]:
            best = (miss, sentences, ssml, synthesis)
        if miss <= 0.25:
            break
    assert best is not None
    _, sentences, ssml, synthesis = best

    lead = int(round(lead_ms * SAMPLE_RATE_HZ / 1000.0))
    trail = int(round(trail_ms * SAMPLE_RATE_HZ / 1000.0))
    audio = np.concatenate([np.zeros(lead, np.float32), synthesis.audio, np.zeros(trail, np.float32)])
    shift_ms = 1000.0 * lead / SAMPLE_RATE_HZ
    phonemes = [Phoneme(p.mnemonic, p.start_ms + shift_ms, p.end_ms + shift_ms) for p in synthesis.phonemes]
    au = au_track(audio, phonemes)
    meta = {
        "id": f"utt-{index:08d}",
        "index": index,
        "split": split,
        "voice": voice,
        "language": language,
        "variant": variant,
        "rate_wpm": rate_wpm,
        "pitch": pitch,
        "pitch_range": pitch_range,
        "text": " ".join(sentences),
        "sentences": sentences,
        "ssml": ssml,
        "lead_silence_ms": shift_ms,
        "duration_s": audio.size / SAMPLE_RATE_HZ,
        "phonemes": [[p.mnemonic, p.start_ms, p.end_ms] for p in phonemes],
    }
    return Utterance(audio=audio, au=au, meta=meta)


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _write_shard(path: Path, utterances: Sequence[Utterance]) -> dict[str, Any]:
    """Write one shard (an npz with fixed timestamps) atomically; return its manifest entry."""
    arrays: dict[str, np.ndarray] = {
        "audio": np.concatenate([u.audio for u in utterances]).astype(np.float32),
        "audio_offsets": np.cumsum([0] + [u.audio.size for u in utterances], dtype=np.int64),
        "au": np.concatenate([u.au for u in utterances]).astype(np.float32),
        "au_offsets": np.cumsum([0] + [u.au.shape[0] for u in utterances], dtype=np.int64),
        "meta": np.frombuffer(json.dumps([u.meta for u in utterances], sort_keys=True).encode("utf-8"), dtype=np.uint8),
    }
    tmp = path.with_suffix(".npz.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, _npy_bytes(array))
    tmp.replace(path)
    return {
        "file": path.name,
        "split": utterances[0].meta["split"],
        "n_utterances": len(utterances),
        "n_samples": int(arrays["audio"].size),
        "n_hops": int(arrays["au"].shape[0]),
    }


def _make_indexed(job: tuple[CorpusConfig, int]) -> Utterance:
    return make_utterance(*job)


def generate_corpus(
    out_dir: str | Path,
    *,
    n_utterances: int,
    seed: int,
    held_out_voices: Sequence[str] = DEFAULT_HELD_OUT_VOICES,
    workers: int = 1,
    progress: bool = True,
    overwrite: bool = False,
    **settings: Any,
) -> dict[str, Any]:
    """Generate a corpus into ``out_dir`` and return its manifest.

    Args:
        out_dir: folder to create (or an empty one).
        n_utterances: how many utterances, all splits together.
        seed: fixes the content; same arguments, same bytes.
        held_out_voices: variant names kept out of training (see module doc).
        workers: processes synthesising in parallel (output does not depend on
            it). Above 1 they are spawned, so a calling script needs the
            usual ``if __name__ == "__main__":`` guard.
        progress: show a tqdm bar.
        overwrite: delete an earlier corpus's shards and manifest in ``out_dir``.
        **settings: any other :class:`CorpusConfig` field (rates, pitches,
            durations, languages, variants, shard size...).

    Raises:
        FileExistsError: ``out_dir`` holds files and ``overwrite`` is False.
        ValueError: inconsistent settings.
    """
    config = CorpusConfig(n_utterances=n_utterances, seed=seed, held_out_voices=tuple(held_out_voices), **settings)
    config.check()
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    existing = list(out.iterdir())
    if existing:
        if not overwrite:
            raise FileExistsError(f"{out} is not empty; pass overwrite=True to replace a corpus there")
        for p in existing:
            if p.name == MANIFEST_NAME or p.suffix == ".npz" or p.name.endswith(".npz.tmp"):
                p.unlink()

    buffers: dict[str, list[Utterance]] = {split: [] for split in SPLITS}
    shard_counts = dict.fromkeys(SPLITS, 0)
    shards: list[dict[str, Any]] = []

    def flush(split: str) -> None:
        path = out / f"{split}-{shard_counts[split]:05d}.npz"
        shards.append(_write_shard(path, buffers[split]))
        shard_counts[split] += 1
        buffers[split] = []

    jobs = ((config, i) for i in range(n_utterances))
    bar = tqdm(total=n_utterances, desc="corpus", unit="utt", disable=not progress)
    pool_context = (
        multiprocessing.get_context("spawn").Pool(workers, maxtasksperchild=_CHUNKS_PER_WORKER)
        if workers > 1
        else _Serial()
    )
    with pool_context as pool:
        for utterance in pool.imap(_make_indexed, jobs, chunksize=_CHUNK):
            split = utterance.meta["split"]
            buffers[split].append(utterance)
            if len(buffers[split]) == config.utterances_per_shard:
                flush(split)
            bar.update(1)
    bar.close()
    for split in SPLITS:
        if buffers[split]:
            flush(split)

    manifest = {
        "format_version": FORMAT_VERSION,
        "config": asdict(config),
        "espeak_ng_version": espeak.espeak_version(),
        "numpy_version": np.__version__,
        "sample_rate_hz": SAMPLE_RATE_HZ,
        "hop_ms": HOP_MS,
        "window_ms": WINDOW_MS,
        "au_names": list(AU_NAMES),
        "splits": {s: sum(x["n_utterances"] for x in shards if x["split"] == s) for s in SPLITS},
        "shards": shards,
    }
    serialized = json.dumps(manifest, indent=2, sort_keys=True)
    (out / MANIFEST_NAME).write_text(serialized + "\n", encoding="utf-8")
    return json.loads(serialized)  # as read_manifest will see it (tuples become lists)


class _Serial:
    """The in-process stand-in for a worker pool (``workers=1``)."""

    def __enter__(self) -> _Serial:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    @staticmethod
    def imap(func: Any, iterable: Any, chunksize: int = 1) -> Iterator[Any]:
        return map(func, iterable)


def read_manifest(corpus_dir: str | Path) -> dict[str, Any]:
    """The manifest of a complete corpus (FileNotFoundError if it was never finished)."""
    manifest = json.loads((Path(corpus_dir) / MANIFEST_NAME).read_text(encoding="utf-8"))
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"corpus format {manifest.get('format_version')} is not {FORMAT_VERSION}")
    return manifest


def iter_shard(path: str | Path) -> Iterator[Utterance]:
    """The utterances of one shard file, in order."""
    with np.load(path, allow_pickle=False) as data:
        audio, audio_offsets = data["audio"], data["audio_offsets"]
        au, au_offsets = data["au"], data["au_offsets"]
        metas = json.loads(data["meta"].tobytes().decode("utf-8"))
    for i, meta in enumerate(metas):
        yield Utterance(
            audio=audio[audio_offsets[i] : audio_offsets[i + 1]],
            au=au[au_offsets[i] : au_offsets[i + 1]],
            meta=meta,
        )


def iter_utterances(corpus_dir: str | Path, *, splits: Sequence[str] = SPLITS) -> Iterator[Utterance]:
    """All utterances of ``splits``, shard by shard in manifest order. No torch needed."""
    unknown = set(splits) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown splits {sorted(unknown)}; known: {SPLITS}")
    for shard in read_manifest(corpus_dir)["shards"]:
        if shard["split"] in splits:
            yield from iter_shard(Path(corpus_dir) / shard["file"])


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m models.data.corpus OUT_DIR --utterances N --seed S [--workers W]``."""
    import argparse

    parser = argparse.ArgumentParser(description="Generate the synthetic espeak corpus with AU labels.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--utterances", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    manifest = generate_corpus(
        args.out_dir,
        n_utterances=args.utterances,
        seed=args.seed,
        workers=args.workers,
        overwrite=args.overwrite,
    )
    print(json.dumps(manifest["splits"]))


if __name__ == "__main__":
    main()
