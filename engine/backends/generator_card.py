"""What a generator file says about itself: whose face it animates and what its AUs mean.

A GANimation generator is either **person-agnostic** (trained on a face data
set: the upstream GANimation and ganimation_replicate checkpoints, our
unpaired trainer) or **enrolled** on one portrait (``avatar enroll``), and then
it only animates that portrait. Its AUs are absolute (GANimation's meaning: 0
is a relaxed face) or, for the first enrolments, relative to the photo's own
expression. Our files carry this as a small JSON card: in the checkpoint under
``"card"``, in the ONNX export as the metadata property ``CARD_METADATA_KEY``.
Upstream checkpoints declare themselves by their format. Reading an ONNX card
needs no torch (onnxruntime reads the metadata).
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast, get_args

from engine.avatar.identity import PortraitIdentity
from engine.backends.model_files import ModelSource
from engine.errors import EngineError

CARD_METADATA_KEY = "avatar_engine.generator_card"
"""ONNX ``metadata_props`` key (and, as ``"card"``, the checkpoint key) of the JSON card."""

Subject = Literal["one-portrait", "any-face"]
AuMeaning = Literal["absolute", "relative-to-photo"]


class CardError(EngineError, ValueError):
    """A generator card that cannot be read: names the file."""


@dataclass(frozen=True)
class GeneratorCard:
    """subject: whose faces; aus: what its AU inputs mean; portrait: for ``one-portrait``, which one."""

    subject: Subject
    aus: AuMeaning = "absolute"
    portrait: PortraitIdentity | None = None

    def __post_init__(self) -> None:
        if self.subject not in get_args(Subject) or self.aus not in get_args(AuMeaning):
            raise ValueError(f"unknown generator card subject {self.subject!r} or AU meaning {self.aus!r}")
        if (self.subject == "one-portrait") != (self.portrait is not None):
            raise ValueError("a one-portrait card names its portrait, an any-face card none")

    @classmethod
    def enrolled(cls, portrait: PortraitIdentity, aus: AuMeaning = "absolute") -> "GeneratorCard":
        return cls("one-portrait", aus, portrait)

    def to_json(self) -> str:
        data: dict[str, object] = {"subject": self.subject, "aus": self.aus}
        if self.portrait is not None:
            data["portrait"] = self.portrait.to_json()
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str, where: object) -> "GeneratorCard":
        """Parse a card; CardError naming ``where`` (the file) if it is not one."""
        try:
            data = json.loads(text)
            portrait = data.get("portrait")
            return cls(
                subject=cast(Subject, data["subject"]),
                aus=cast(AuMeaning, data.get("aus", "absolute")),
                portrait=None if portrait is None else PortraitIdentity.from_json(portrait),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CardError(f"{where}: unreadable generator card ({exc})") from exc

    def describe(self) -> str:
        if self.subject == "any-face":
            return "person-agnostic"
        meaning = "" if self.aus == "absolute" else ", AUs relative to its photo"
        return f"enrolled on one portrait{meaning}"


def read_onnx_card(path: Path) -> GeneratorCard | None:
    """The card in an ONNX file's metadata, None if it has none (onnxruntime reads it; ~0.1 s)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for unreadable files
        raise CardError(f"{path}: cannot read the generator's ONNX file: {exc}") from exc
    text = session.get_modelmeta().custom_metadata_map.get(CARD_METADATA_KEY)
    return None if text is None else GeneratorCard.from_json(text, path)


def read_card(source: ModelSource) -> GeneratorCard | None:
    """The card of a generator's weights, None when they say nothing (untrained, or an old file).

    ONNX files: their metadata. Checkpoints (needs torch, as exporting them
    does): our format's ``"card"``; upstream formats are person-agnostic.
    """
    if source.path is None:
        return None
    if source.is_onnx:
        return read_onnx_card(source.path)
    from engine.backends.torch_support import torch_support  # it imports this module (for typing)

    return torch_support("reading a generator checkpoint's card").generator_card(source.path)
