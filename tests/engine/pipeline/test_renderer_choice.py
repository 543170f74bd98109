"""--renderer auto: the generator only where it fits the face, else warp, and the reason in one line."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.avatar import Avatar, load_default_avatar
from engine.avatar.identity import PortraitIdentity, crop_sha256, descriptor_distance, portrait_identity
from engine.backends.generator_card import CardError, GeneratorCard, read_card
from engine.backends.model_files import ModelSource
from engine.pipeline.renderer import GanimationFaces, WarpFaces
from engine.pipeline.renderer_choice import SAME_PHOTO_DISTANCE, build_face_renderer, choose_renderer


@pytest.fixture(scope="module")
def avatar() -> Avatar:
    return load_default_avatar()


@pytest.fixture(scope="module")
def identity(avatar: Avatar) -> PortraitIdentity:
    return portrait_identity(avatar)


def elsewhere(identity: PortraitIdentity, distance: float) -> PortraitIdentity:
    """Another crop, with a descriptor ``distance`` away from ``identity``'s."""
    direction = np.random.default_rng(1).normal(size=128)
    moved = identity.descriptor + distance * direction / np.linalg.norm(direction)
    return PortraitIdentity("0" * 64, moved.astype(np.float32))


def test_identity_of_the_astronaut(avatar: Avatar, identity: PortraitIdentity) -> None:
    assert identity.crop_sha256 == crop_sha256(avatar) and identity.descriptor.shape == (128,)
    again = PortraitIdentity.from_json(identity.to_json())
    assert again.crop_sha256 == identity.crop_sha256
    assert descriptor_distance(again.descriptor, identity.descriptor) < 1e-5


@pytest.mark.parametrize(
    "card, expected, words",
    [
        (None, "warp", "does not say"),
        (GeneratorCard("any-face"), "ganimation", "person-agnostic"),
        ("same crop", "ganimation", "enrolled on this portrait"),
        ("same photo", "ganimation", "enrolled on this photo"),
        ("another face", "warp", "enrolled on another portrait"),
        ("relative", "warp", "relative to its photo"),
    ],
)
def test_auto(avatar: Avatar, identity: PortraitIdentity, card: object, expected: str, words: str) -> None:
    cards = {
        "same crop": GeneratorCard.enrolled(identity),
        "same photo": GeneratorCard.enrolled(elsewhere(identity, 0.5 * SAME_PHOTO_DISTANCE)),
        "another face": GeneratorCard.enrolled(elsewhere(identity, 0.7)),
        "relative": GeneratorCard.enrolled(identity, aus="relative-to-photo"),
    }
    choice = choose_renderer("auto", cards.get(card, card), avatar)  # type: ignore[arg-type]
    assert choice.name == expected and words in choice.reason
    line = choice.describe()
    assert line.startswith(f"renderer: {expected} (") and "\n" not in line


def test_explicit_choices_are_obeyed_and_say_why(avatar: Avatar, identity: PortraitIdentity) -> None:
    other = GeneratorCard.enrolled(elsewhere(identity, 0.7))
    assert choose_renderer("warp", GeneratorCard("any-face"), avatar).name == "warp"
    forced = choose_renderer("ganimation", other, avatar)
    assert forced.name == "ganimation" and "another portrait" in forced.reason
    assert choose_renderer("ganimation", GeneratorCard.enrolled(identity, "relative-to-photo"), avatar).relative_aus
    with pytest.raises(ValueError, match="auto, ganimation, warp"):
        choose_renderer("magic", None, avatar)


def test_cards_round_trip_and_bad_ones_name_the_file(identity: PortraitIdentity) -> None:
    card = GeneratorCard.enrolled(identity, "relative-to-photo")
    again = GeneratorCard.from_json(card.to_json(), "x")
    assert (again.subject, again.aus) == ("one-portrait", "relative-to-photo")
    with pytest.raises(CardError, match="gen.onnx"):
        GeneratorCard.from_json('{"subject": "everyone"}', "gen.onnx")
    with pytest.raises(ValueError):
        GeneratorCard("any-face", portrait=identity)


def test_the_default_generator_is_the_astronauts_with_absolute_aus_and_auto_picks_it(avatar: Avatar) -> None:
    weights = Path(__file__).resolve().parents[3] / "models" / "weights" / "generator.onnx"
    card = read_card(ModelSource("generator", weights))
    assert card is not None and card.subject == "one-portrait" and card.aus == "absolute"
    assert card.portrait is not None and card.portrait.crop_sha256 == crop_sha256(avatar)
    assert choose_renderer("auto", card, avatar).name == "ganimation"


def test_build_makes_the_generator_only_for_ganimation(avatar: Avatar) -> None:
    made = []

    def generator() -> object:
        made.append(1)
        raise AssertionError("the warp renderer needs no generator")

    faces, choice = build_face_renderer("warp", ModelSource("generator", None), avatar, generator)  # type: ignore[arg-type]
    assert isinstance(faces, WarpFaces) and choice.name == "warp" and not made
    faces, choice = build_face_renderer("auto", ModelSource("generator", None), avatar, generator)  # type: ignore[arg-type]
    assert isinstance(faces, WarpFaces) and "does not say" in choice.reason
    assert not isinstance(faces, GanimationFaces)


def test_choosing_and_drawing_need_no_torch_and_no_training_code() -> None:
    """The serving path loads the default avatar, picks its generator and draws with it, torch never imported."""
    code = (
        "import sys, numpy as np\n"
        "from engine.backends.model_files import resolve_source\n"
        "from engine.live.build import PartsSettings, build_parts\n"
        "from engine.pipeline import AUFrame, FrameTrace, Renderer, RenderRequest\n"
        "from engine.pipeline.renderer_choice import build_face_renderer\n"
        "built = build_parts(PartsSettings())\n"
        "assert built.renderer_choice.name == 'ganimation', built.renderer_choice\n"
        "avatar = built.parts.avatar\n"
        "source = resolve_source('generator', None)\n"
        "faces, choice = build_face_renderer('auto', source, avatar, lambda: built.generator)\n"
        "frame = AUFrame(0, np.zeros(17, np.float32), FrameTrace(0, 0, 0.0))\n"
        "Renderer(faces).render([RenderRequest(avatar, frame)])\n"
        "assert 'torch' not in sys.modules and not [m for m in sys.modules if m.startswith('models.training')]\n"
    )
    repo = Path(__file__).resolve().parents[3]
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, cwd=repo)
