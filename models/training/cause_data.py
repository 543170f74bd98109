"""Training examples for CAUSE: audio with AU targets and a per-hop loss weight.

Both sources people have end up here: the synthetic espeak corpus
(:mod:`models.data.corpus`) and real recordings with OpenFace CSVs
(:mod:`models.data.openface`). A batch is a set of random crops, augmented on
the fly and turned into log-mel with the engine's own front end, so that the
network trains on exactly the features it will see when serving.
"""

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from engine.au import N_AUS, au_index
from engine.audio import MelConfig, log_mel
from models.data.augment import AugmentConfig, augment
from models.data.labeled_audio import LabeledAudio

MEL = MelConfig()
HOP = MEL.hop_samples

AU_LOSS_WEIGHTS = np.ones(N_AUS, np.float32)
AU_LOSS_WEIGHTS[au_index("AU45")] = 0.0
"""Per-AU loss weights: blinks (AU45) are not predictable from speech (a blink
model supplies them), so CAUSE is not asked to learn them."""


@dataclass(frozen=True)
class Batch:
    mel: torch.Tensor  # (B, segment_hops + lookahead, 80)
    target: torch.Tensor  # (B, segment_hops, 17)
    weight: torch.Tensor  # (B, segment_hops, 17)


def crop(item: LabeledAudio, start_hop: int, n_hops: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Audio for mel hops ``start_hop .. start_hop + n_hops - 1`` and the labels of those hops.

    Past the end of the recording the audio is silence and the labels are
    neutral (zeros) with full weight: speech ends in a closed, resting face.
    """
    first, last = start_hop * HOP, (start_hop + n_hops - 1) * HOP + MEL.window_samples
    audio = np.zeros(last - first, np.float32)
    available = item.audio[first:last]
    audio[: available.size] = available
    au = np.zeros((n_hops, N_AUS), np.float32)
    weight = np.ones(n_hops, np.float32)
    labels = item.au[start_hop : start_hop + n_hops]
    au[: labels.shape[0]] = labels
    weight[: labels.shape[0]] = item.weight[start_hop : start_hop + n_hops]
    return audio, au, weight


class CropSampler:
    """Random fixed-length crops of random utterances, augmented, as training batches.

    The first ``warmup_hops`` outputs of a crop that starts mid-utterance get
    no loss: the network's left context there is zeros instead of the real
    past, which a live stream (warm since the session began) never sees.
    """

    def __init__(
        self,
        items: list[LabeledAudio],
        *,
        segment_hops: int,
        lookahead_hops: int,
        warmup_hops: int,
        augment_config: AugmentConfig | None,
        rng: np.random.Generator,
    ) -> None:
        if not items:
            raise ValueError("no training utterances")
        self.items = items
        self.segment_hops = segment_hops
        self.lookahead_hops = lookahead_hops
        self.warmup_hops = warmup_hops
        self.augment_config = augment_config
        self.rng = rng

    def batch(self, batch_size: int) -> Batch:
        mels, targets, weights = [], [], []
        n_in = self.segment_hops + self.lookahead_hops
        for _ in range(batch_size):
            item = self.items[int(self.rng.integers(len(self.items)))]
            start = 0 if self.rng.random() < 0.25 else int(self.rng.integers(max(1, item.au.shape[0])))
            audio, au, weight = crop(item, start, n_in)
            if self.augment_config is not None:
                audio = augment(audio, self.rng, self.augment_config)
            mels.append(log_mel(audio, MEL))
            targets.append(au[: self.segment_hops])
            per_hop = weight[: self.segment_hops].copy()
            if start > 0:
                per_hop[: self.warmup_hops] = 0.0
            weights.append(per_hop[:, None] * AU_LOSS_WEIGHTS[None, :])
        return Batch(
            mel=torch.from_numpy(np.stack(mels)),
            target=torch.from_numpy(np.stack(targets)),
            weight=torch.from_numpy(np.stack(weights)),
        )


def mel_statistics(items: Iterable[LabeledAudio], max_items: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin mean and std of the clean training log-mel: the network's input normalisation."""
    frames = [log_mel(item.audio, MEL) for _, item in zip(range(max_items), items)]
    stacked = np.concatenate([f for f in frames if f.shape[0]], axis=0)
    return stacked.mean(axis=0), np.maximum(stacked.std(axis=0), 1e-3)
