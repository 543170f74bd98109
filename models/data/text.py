"""English sentences for the synthetic corpus: a small grammar plus fixed phrases.

The AU model must hear every mouth shape in many contexts, at many lengths,
in statements, questions (rising pitch: brows) and exclamations (loud:
emphasis). A grammar of templates over word lists gives tens of millions of
distinct sentences; the word lists are chosen to cover English visemes well
(bilabials in *paper, maybe, bump*; rounding in *blue, moon, water*; open jaw
in *father, car, hot*; labiodentals in *five, very*; postalveolars in
*church, judge, shoe*).

Held-out texts are decided per sentence by a salted hash, not by the corpus
seed: the same sentence is held out in every corpus, so a model trained on
one corpus can be evaluated on another's held-out texts without leakage.
"""

from __future__ import annotations

import hashlib

import numpy as np

_NOUNS = (
    "baby",
    "book",
    "boat",
    "bridge",
    "bottle",
    "car",
    "cat",
    "chair",
    "church",
    "city",
    "coffee",
    "dog",
    "door",
    "farmer",
    "father",
    "fish",
    "garden",
    "girl",
    "guitar",
    "house",
    "judge",
    "key",
    "kitchen",
    "lamp",
    "letter",
    "map",
    "market",
    "mother",
    "moon",
    "mountain",
    "music",
    "paper",
    "park",
    "people",
    "phone",
    "picture",
    "piano",
    "river",
    "road",
    "school",
    "shoe",
    "sister",
    "story",
    "teacher",
    "train",
    "tree",
    "village",
    "violin",
    "water",
    "window",
    "wood",
    "zoo",
)
_ADJECTIVES = (
    "big",
    "blue",
    "bright",
    "broken",
    "busy",
    "calm",
    "cheap",
    "cold",
    "dark",
    "early",
    "empty",
    "famous",
    "funny",
    "gentle",
    "golden",
    "green",
    "happy",
    "heavy",
    "hot",
    "huge",
    "little",
    "lovely",
    "modern",
    "narrow",
    "new",
    "old",
    "pale",
    "perfect",
    "purple",
    "quiet",
    "round",
    "small",
    "smooth",
    "strange",
    "warm",
    "wet",
    "wide",
    "yellow",
    "young",
)
_VERBS_PAST = (
    "bought",
    "built",
    "carried",
    "chose",
    "cleaned",
    "found",
    "fixed",
    "forgot",
    "helped",
    "kept",
    "left",
    "liked",
    "moved",
    "opened",
    "painted",
    "pushed",
    "sold",
    "showed",
    "touched",
    "watched",
)
_VERBS_BASE = (
    "buy",
    "call",
    "change",
    "check",
    "close",
    "follow",
    "move",
    "open",
    "paint",
    "play",
    "push",
    "reach",
    "repair",
    "share",
    "show",
    "visit",
    "wash",
    "watch",
)
_PREPOSITIONS = ("across", "behind", "beside", "near", "under", "over", "past", "through", "into", "by")
_TIMES = (
    "today",
    "tomorrow",
    "yesterday",
    "this morning",
    "last night",
    "next week",
    "on Monday",
    "on Friday",
    "in the evening",
    "before lunch",
    "after the rain",
    "every summer",
)
_SUBJECTS = ("I", "we", "you", "they", "my brother", "our neighbour", "the old man", "my friend Paul", "Mary")
_WH = ("where", "when", "why", "how")
_NUMBERS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")

_PHRASES = (
    "Yes.",
    "No.",
    "Okay.",
    "Really?",
    "Oh no!",
    "Thank you.",
    "Good morning.",
    "Good night.",
    "Hello there.",
    "Excuse me.",
    "Of course.",
    "Maybe later.",
    "Why not?",
    "Are you sure?",
    "Wow, that is amazing!",
    "Well, I suppose so.",
    "Hmm, let me think.",
    "Absolutely not!",
    "Please come in.",
    "See you soon.",
    "What a surprise!",
    "Not at all.",
    "I beg your pardon?",
    "That is wonderful news!",
    "Be careful!",
    "How are you?",
    "Nice to meet you.",
    "Fine, thanks.",
    "I am not sure.",
    "Wait a moment.",
    "You are right.",
    "Happy birthday!",
)


def _pick(rng: np.random.Generator, words: tuple[str, ...]) -> str:
    return words[int(rng.integers(len(words)))]


def _noun_phrase(rng: np.random.Generator) -> str:
    det = _pick(rng, ("the", "a", "my", "your", "that", "this", "our"))
    if rng.random() < 0.5:
        phrase = f"{det} {_pick(rng, _ADJECTIVES)} {_pick(rng, _NOUNS)}"
    else:
        phrase = f"{det} {_pick(rng, _NOUNS)}"
    if det == "a" and phrase[2] in "aeiou":
        phrase = "an" + phrase[1:]
    return phrase


def _sentence(rng: np.random.Generator) -> str:
    """One sentence from one of the templates, with final punctuation."""
    kind = int(rng.integers(10))
    subject = _pick(rng, _SUBJECTS)
    if kind == 0:
        return f"{_noun_phrase(rng).capitalize()} {_pick(rng, _VERBS_PAST)} {_noun_phrase(rng)} {_pick(rng, _TIMES)}."
    if kind == 1:
        return f"{subject[0].upper() + subject[1:]} walked {_pick(rng, _PREPOSITIONS)} {_noun_phrase(rng)}."
    if kind == 2:
        return f"Did you {_pick(rng, _VERBS_BASE)} {_noun_phrase(rng)} {_pick(rng, _TIMES)}?"
    if kind == 3:
        return f"{_pick(rng, _WH).capitalize()} is {_noun_phrase(rng)}?"
    if kind == 4:
        adjective = _pick(rng, _ADJECTIVES)
        article = "an" if adjective[0] in "aeiou" else "a"
        return f"What {article} {adjective} {_pick(rng, _NOUNS)}!"
    if kind == 5:
        return f"I think we should {_pick(rng, _VERBS_BASE)} {_noun_phrase(rng)} {_pick(rng, _TIMES)}."
    if kind == 6:
        return f"We meet at {_pick(rng, _NUMBERS)} o'clock, {_pick(rng, _PREPOSITIONS)} {_noun_phrase(rng)}."
    if kind == 7:
        first = f"{subject[0].upper() + subject[1:]} {_pick(rng, _VERBS_PAST)} {_noun_phrase(rng)}"
        second = f"{_pick(rng, _SUBJECTS)} {_pick(rng, _VERBS_PAST)} {_noun_phrase(rng)}"
        return f"{first}, {_pick(rng, ('but', 'and', 'so', 'because'))} {second}."
    if kind == 8:
        intensifier = _pick(rng, ("very", "so", "really", "quite"))
        return f"{_noun_phrase(rng).capitalize()} is {intensifier} {_pick(rng, _ADJECTIVES)}!"
    return _pick(rng, _PHRASES)


def is_held_out(sentence: str, fraction: float) -> bool:
    """Whether ``sentence`` belongs to the held-out texts (``fraction`` of all).

    A stable hash (BLAKE2b of the UTF-8 text), so the decision is the same in
    every process, corpus and Python version.
    """
    digest = hashlib.blake2b(sentence.encode("utf-8"), digest_size=8, person=b"heldtext").digest()
    return int.from_bytes(digest, "big") / 2.0**64 < fraction


def sample_sentences(
    rng: np.random.Generator, *, target_words: int, held_out: bool, held_out_fraction: float
) -> list[str]:
    """Sentences, all on one side of the text split, about ``target_words`` long together.

    Args:
        target_words: wanted total word count (>= 1); the last sentence may
            overshoot it, one sentence is always returned.
        held_out: draw only held-out sentences (True) or only training ones.
        held_out_fraction: share of all sentences that are held out, in (0, 1).
    """
    if not 0.0 < held_out_fraction < 1.0:
        raise ValueError(f"held_out_fraction must be in (0, 1), got {held_out_fraction}")
    sentences: list[str] = []
    words = 0
    while not sentences or words < target_words:
        sentence = _sentence(rng)
        if is_held_out(sentence, held_out_fraction) != held_out:
            continue
        sentences.append(sentence)
        words += len(sentence.split())
    return sentences
