"""Which face renderer draws a portrait: ``--renderer auto|ganimation|warp``, and why, in one line.

``auto`` takes the GANimation generator only when it fits the face in front of
it: a person-agnostic generator fits any face; a generator enrolled on one
portrait fits that portrait only (the same crop, or a descriptor of the same
photo), and only if its AUs are absolute (a generator enrolled with AUs relative
to its photo cannot relax the photo's own expression: a smiling photo would
smile through "sad"). Anything else gets the instant warp renderer, which needs
no training and fits every photo with a face.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

from engine.avatar import Avatar
from engine.avatar.identity import crop_sha256, descriptor_distance
from engine.avatar.landmarks import face_descriptor
from engine.backends.base import GeneratorBackend
from engine.backends.generator_card import GeneratorCard, read_card
from engine.backends.model_files import ModelSource
from engine.pipeline.renderer import DeviceGenerator, FaceRenderer, GanimationFaces, WarpFaces
from kernels.device_compose import DeviceCompositor

RendererName = Literal["ganimation", "warp"]
RENDERER_CHOICES: tuple[str, ...] = ("auto", *get_args(RendererName))
SAME_PHOTO_DISTANCE = 0.2
"""Descriptor distance under which a portrait counts as the photo a generator was enrolled on: the same
photo scaled differently is far closer, other photos of the same person are farther (bench/README.md,
"Renderers"), and a generator enrolled on one photo does not carry over to another."""


@dataclass(frozen=True)
class RendererChoice:
    """The renderer to use and why; ``relative_aus`` for a generator enrolled with relative AUs."""

    name: RendererName
    reason: str
    relative_aus: bool = False

    def describe(self) -> str:
        """One line for the user: ``renderer: warp (the generator ... )``."""
        return f"renderer: {self.name} ({self.reason})"


def generator_fit(card: GeneratorCard | None, avatar: Avatar) -> tuple[bool, str]:
    """Whether the generator described by ``card`` animates ``avatar``'s face, and why (or why not)."""
    if card is None:
        return False, "the generator's file does not say which face it animates (untrained, or saved without a card)"
    if card.subject == "any-face":
        return True, "the generator is person-agnostic"
    assert card.portrait is not None
    if crop_sha256(avatar) == card.portrait.crop_sha256:
        return True, "the generator was enrolled on this portrait"
    distance = descriptor_distance(face_descriptor(avatar.portrait, avatar.face_box), card.portrait.descriptor)
    if distance <= SAME_PHOTO_DISTANCE:
        return True, f"the generator was enrolled on this photo (face descriptor distance {distance:.2f})"
    return False, (
        f"the generator was enrolled on another portrait (face descriptor distance {distance:.2f} > "
        f"{SAME_PHOTO_DISTANCE}); enrol this one with `avatar enroll`"
    )


def choose_renderer(requested: str, card: GeneratorCard | None, avatar: Avatar) -> RendererChoice:
    """The renderer for ``avatar``: ``requested`` is ``auto``, ``ganimation`` or ``warp``.

    An explicit ``ganimation`` is obeyed even where it does not fit; the reason says so.
    """
    if requested not in RENDERER_CHOICES:
        raise ValueError(f"unknown renderer {requested!r}; expected one of {', '.join(RENDERER_CHOICES)}")
    relative = card is not None and card.aus == "relative-to-photo"
    if requested == "warp":
        return RendererChoice("warp", "--renderer warp: landmark-driven, no training")
    fits, why = generator_fit(card, avatar)
    if requested == "ganimation":
        return RendererChoice("ganimation", f"--renderer ganimation; {why}", relative_aus=relative)
    if not fits:
        return RendererChoice("warp", f"auto: {why}")
    if relative:
        return RendererChoice(
            "warp",
            f"auto: {why}, but with AUs relative to its photo, so it cannot relax the photo's own "
            "expression; re-enrol it for absolute AUs, or use --renderer ganimation",
        )
    return RendererChoice("ganimation", f"auto: {why}")


def build_face_renderer(
    requested: str, generator_source: ModelSource, avatar: Avatar, generator: Callable[[], GeneratorBackend]
) -> tuple[FaceRenderer, RendererChoice]:
    """The face renderer ``--renderer`` asks for, for ``avatar``, set up for its first frame.

    generator: makes (or returns) the generator runtime for ``generator_source``;
    called only when the choice is GANimation. The generator's card is read
    only when it matters (not for ``warp``). A generator on a GPU (TensorRT)
    gets the CUDA compositor, so its outputs never leave the device.
    """
    card = None if requested == "warp" else read_card(generator_source)
    choice = choose_renderer(requested, card, avatar)
    faces: FaceRenderer
    if choice.name == "ganimation":
        runtime = generator()
        compositor = None
        if isinstance(runtime, DeviceGenerator):
            from kernels.launch import ImageKernels  # the gpu extra: present wherever TensorRT runs

            compositor = DeviceCompositor(ImageKernels(0))
        faces = GanimationFaces(runtime, relative_aus=choice.relative_aus, compositor=compositor)
    else:
        faces = WarpFaces()
    faces.prepare(avatar)
    return faces, choice
