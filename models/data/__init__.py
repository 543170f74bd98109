"""Training data: the synthetic espeak corpus with rule-made AU labels, and its augmentations.

The synthetic corpus's modules, one job each: ``espeak`` (speech and phoneme
timings), ``text`` (sentences), ``visemes`` (every labelling rule),
``pitch`` (F0 and loudness), ``resample``, ``augment``, ``timing`` (the hop
grid) and ``corpus`` (generation, shards, reading); none imports torch.
"""
