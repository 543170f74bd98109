"""The renderer on the smiling astronaut: the photo back at its own AUs, presets against the photo, head motion."""

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from engine.au import AU_NAMES
from engine.avatar import Avatar, load_default_avatar
from engine.avatar.landmarks import detect_landmarks
from engine.avatar.photo_aus import mouth_measures
from engine.backends.base import GeneratorBackend
from engine.pipeline.frames import AUFrame, FrameTrace, HeadPose, VideoFrame
from engine.pipeline.renderer import GanimationFaces, Renderer, RenderRequest, WarpFaces
from kernels.device_compose import DeviceCompositor
from kernels.host_build import find_compiler
from kernels.launch import ImageKernels, address
from kernels.reference import rgb_to_i420

PRESETS = {  # clients/web/avatar_web/app.js
    "smile": {"AU06": 2.0, "AU12": 3.0},
    "sad": {"AU01": 2.5, "AU04": 2.0, "AU15": 3.0},
    "angry": {"AU04": 3.0, "AU07": 2.5, "AU23": 2.5},
}


def aus_of(**values: float) -> np.ndarray:
    aus = np.zeros(17, np.float32)
    for name, value in values.items():
        aus[AU_NAMES.index(name)] = value
    return aus


def render(renderer: Renderer, avatar: Avatar, aus: np.ndarray, head: HeadPose | None = None) -> VideoFrame:
    frame = AUFrame(0, aus, FrameTrace(shown_sample=0, due_sample=0, audio_arrival_s=0.0), head=head)
    return renderer.render([RenderRequest(avatar, frame)])[0]


@pytest.fixture(scope="module")
def avatar() -> Avatar:
    return load_default_avatar()


@pytest.fixture(scope="module")
def warp() -> Renderer:
    return Renderer(WarpFaces())


def measured(avatar: Avatar, rgb: np.ndarray) -> tuple[float, float]:
    """(lip gap, corner height) in IOD, from dlib's own landmarks on a picture, as an outside observer sees it."""
    return mouth_measures(detect_landmarks(rgb, avatar.face_box).astype(np.float64))


def test_the_photos_own_aus_give_the_photo_back_in_rgb_and_i420(warp: Renderer, avatar: Avatar) -> None:
    frame = render(warp, avatar, avatar.photo_aus)
    np.testing.assert_array_equal(frame.rgb, avatar.portrait)
    assert frame.i420 is not None
    for got, want in zip(frame.i420, avatar.portrait_i420, strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("preset", ["sad", "angry"])
def test_presets_take_the_photos_smile_away(warp: Renderer, avatar: Avatar, preset: str) -> None:
    photo_gap, photo_corners = measured(avatar, avatar.portrait)
    frame = render(warp, avatar, aus_of(**PRESETS[preset]))
    gap, corners = measured(avatar, frame.rgb)
    assert corners < photo_corners - 0.04  # IOD: the lip corners come down
    assert gap < 0.7 * photo_gap  # the lips (nearly) close; dlib's own inner-lip points sit on her teeth
    for got, want in zip(frame.i420 or (), rgb_to_i420(frame.rgb), strict=True):
        np.testing.assert_array_equal(got, want)


def test_an_open_jaw_opens_the_lips_wider_than_the_photo(warp: Renderer, avatar: Avatar) -> None:
    photo_gap, _ = measured(avatar, avatar.portrait)
    gap, _ = measured(avatar, render(warp, avatar, aus_of(AU25=5.0, AU26=5.0)).rgb)
    assert gap > photo_gap + 0.1


def test_head_motion_moves_the_head_not_the_background_or_the_body(warp: Renderer, avatar: Avatar) -> None:
    still = render(warp, avatar, avatar.photo_aus).rgb
    tilted = render(warp, avatar, avatar.photo_aus, HeadPose(pitch_deg=2.0, yaw_deg=-3.0, roll_deg=4.0)).rgb
    face = avatar.face_box
    top, left = int(face.y) - 30, int(face.x)
    forehead = np.s_[top : top + 20, left : left + int(face.width)]
    assert np.abs(tilted[forehead].astype(int) - still[forehead]).mean() > 8  # hair and forehead moved
    np.testing.assert_array_equal(tilted[:, :60], still[:, :60])  # background at the side
    np.testing.assert_array_equal(tilted[-80:], still[-80:])  # the suit
    # No tearing at the neck: the frame is as smooth there as the photo (no new edges).
    neck = np.s_[int(face.y + face.height) : int(face.y + 1.8 * face.height), left : left + int(face.width)]
    steps = [np.abs(np.diff(image[neck].astype(int), axis=0)).max() for image in (still, tilted)]
    assert steps[1] <= steps[0] + 10
    assert render(warp, avatar, avatar.photo_aus, HeadPose()).rgb.tobytes() == still.tobytes()


class RecordingGenerator(GeneratorBackend):
    """Keeps the photo (attention 1) and records the AUs it was given."""

    name = "recording"

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def run(self, images: np.ndarray, aus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.seen.append(aus.copy())
        batch = len(images)
        return np.zeros((batch, 3, 128, 128), np.float32), np.ones((batch, 1, 128, 128), np.float32)


def test_ganimation_gets_absolute_aus_or_changes_from_the_photo(avatar: Avatar) -> None:
    target = aus_of(AU12=1.0, AU15=2.0, AU25=4.0)
    absolute, relative = RecordingGenerator(), RecordingGenerator()
    frame = render(Renderer(absolute), avatar, target)
    render(Renderer(GanimationFaces(relative, relative_aus=True)), avatar, target)
    np.testing.assert_array_equal(absolute.seen[0][0], target)
    np.testing.assert_array_equal(relative.seen[0][0], np.clip(target - avatar.photo_aus, 0, 5))
    np.testing.assert_array_equal(frame.rgb, avatar.portrait)  # attention 1 keeps every pixel of the photo


class EmulatedDeviceGenerator(RecordingGenerator):
    """Puts random outputs on the emulated device (tests/kernels/fake_cuda_core.py), three frames a slice."""

    def __init__(self, compositor: DeviceCompositor) -> None:
        super().__init__()
        self.compositor = compositor
        self.outputs: list[tuple[np.ndarray, np.ndarray]] = []

    def run(self, images: np.ndarray, aus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(len(images))
        color = rng.uniform(-1, 1, (len(images), 3, 128, 128)).astype(np.float32)
        return color, rng.uniform(0, 1, (len(images), 1, 128, 128)).astype(np.float32)

    def device_slices(self, images: np.ndarray, aus: np.ndarray) -> Iterator[tuple[int, int, int, int]]:
        color, mask = self.run(images, aus)
        for start in range(0, len(images), 3):
            buffers = [self._upload(a[start : start + 3]) for a in (color, mask)]
            yield start, min(start + 3, len(images)), address(buffers[0]), address(buffers[1])

    def _upload(self, array: np.ndarray) -> Any:
        array = np.ascontiguousarray(array)
        device = self.compositor.device
        buffer = device.allocate(array.nbytes, stream=self.compositor.stream)
        host = self.compositor.kernels.core.Buffer.from_handle(array.ctypes.data, array.nbytes, owner=array)
        buffer.copy_from(host, stream=self.compositor.stream)
        return buffer


def test_the_gpu_path_gives_the_cpu_paths_frames(avatar: Avatar) -> None:
    """The device path end to end on the CPU: the launcher over an emulated grid, slices, offsets, motion."""
    if find_compiler() is None:
        pytest.skip("no C++ compiler for the emulated kernels")
    from tests.kernels import fake_cuda_core

    compositor = DeviceCompositor(ImageKernels(0, core=fake_cuda_core))
    generator = EmulatedDeviceGenerator(compositor)
    requests = [
        RenderRequest(avatar, AUFrame(i, aus_of(AU25=i), FrameTrace(0, 0, 0.0), head=HeadPose(roll_deg=i - 2.0)))
        for i in range(5)
    ]
    on_device = GanimationFaces(generator, compositor=compositor).pictures(requests)
    on_cpu = GanimationFaces(generator).pictures(requests)
    for got, want in zip(on_device, on_cpu, strict=True):
        np.testing.assert_array_equal(got.rgb, want.rgb)
        for plane, expected in zip(got.i420, want.i420, strict=True):
            np.testing.assert_array_equal(plane, expected)
    with pytest.raises(ValueError, match="cannot leave its outputs"):
        GanimationFaces(RecordingGenerator(), compositor=compositor)
