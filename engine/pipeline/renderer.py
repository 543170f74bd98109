"""Rendering: AU frames of one or many sessions in, finished pictures out.

Two steps. A **face renderer** draws each face at crop resolution as layers
(colour, attention, shift: :class:`kernels.layers.FaceLayers`): the GANimation
generator (one network call for the whole batch the scheduler gathered) or the
instant warp renderer (no training, any photo). The **compositor** then puts
each face into its portrait at the portrait's full resolution, with the head's
motion, and brings the frame's I420 up to date: on the CPU (``Avatar.compose``,
``kernels.compose``), or on the GPU where the generator runs there (TensorRT:
its outputs stay on the device, ``kernels.device_compose``). Whatever the face
renderer leaves alone keeps the photo's own detail.

AUs are absolute targets (0 is a relaxed face); each avatar knows its photo's
own expression (``Avatar.photo_aus``).
"""

import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from engine.au.vocabulary import AU_MAX_INTENSITY
from engine.avatar import Avatar
from engine.avatar.warp.rig import WarpRig
from engine.backends.base import GeneratorBackend
from engine.pipeline.frames import AUFrame, HeadPose, VideoFrame
from kernels.compose import ComposedFrame, host_kernels
from kernels.device_compose import DeviceCompositor, DeviceFace
from kernels.layers import FaceLayers, HeadMotion

WARP_MAX_SIZE_PX = 160
"""The warp renderer draws at the crop box's own size up to this side (and at least ``WARP_MIN_SIZE_PX``).
Its layers are mostly a smooth shift and smooth fills, so a larger face box loses little
by upsampling them, and cost grows with the square of the side."""
WARP_MIN_SIZE_PX = 64


@dataclass(frozen=True)
class RenderRequest:
    """Draw ``frame``'s AUs on ``avatar``."""

    avatar: Avatar
    frame: AUFrame


class FaceRenderer(ABC):
    """Draws the faces of a batch of requests as layers over each avatar's crop box."""

    name: str
    parallel_runs: int = 1
    """How many ``draw`` calls may run at once, from different threads."""

    @abstractmethod
    def prepare(self, avatar: Avatar) -> None:
        """Do the per-avatar set-up now rather than on its first frame."""

    @abstractmethod
    def draw(self, requests: Sequence[RenderRequest]) -> list[FaceLayers]:
        """One ``FaceLayers`` per request, in order."""

    def pictures(self, requests: Sequence[RenderRequest]) -> list[ComposedFrame]:
        """The finished frames: the faces drawn, then composed on the CPU (``Avatar.compose``)."""
        layers = self.draw(requests)
        return [r.avatar.compose(face, head_motion(r.avatar, r.frame.head)) for r, face in zip(requests, layers)]


def head_motion(avatar: Avatar, head: HeadPose | None) -> HeadMotion | None:
    """The compositor's motion for a frame's head pose (None: the portrait's pose)."""
    return None if head is None else avatar.head_motion(head.pitch_deg, head.yaw_deg, head.roll_deg)


@runtime_checkable
class DeviceGenerator(Protocol):
    """A generator runtime that can leave its outputs on the GPU (``TensorRTGenerator``)."""

    def device_slices(self, images: np.ndarray, aus: np.ndarray) -> Iterator[tuple[int, int, int, int]]:
        """``(start, stop, color address, mask address)`` per slice; see ``TensorRTGenerator.device_slices``."""
        ...


class GanimationFaces(FaceRenderer):
    """The GANimation generator: one network call per batch; colour and attention at 128 px.

    relative_aus: the generator was trained with AUs relative to its photo's
        own expression (the first enrolments): it gets ``target - photo``,
        clipped at 0, so it cannot take away an expression the photo has.
    compositor: compose on the GPU (the CUDA kernels), with the generator's
        outputs left there; needs a :class:`DeviceGenerator` (TensorRT).
    """

    name = "ganimation"

    def __init__(
        self,
        generator: GeneratorBackend,
        *,
        relative_aus: bool = False,
        compositor: DeviceCompositor | None = None,
    ) -> None:
        if compositor is not None and not isinstance(generator, DeviceGenerator):
            raise ValueError(f"the {generator.name} generator cannot leave its outputs on a GPU")
        self.generator = generator
        self.parallel_runs = generator.parallel_runs
        self.relative_aus = relative_aus
        self.compositor = compositor

    def prepare(self, avatar: Avatar) -> None:
        """Nothing to set up: the generator's input is the avatar's own crop."""

    def _inputs(self, requests: Sequence[RenderRequest]) -> tuple[np.ndarray, np.ndarray]:
        images = np.stack([r.avatar.crop for r in requests])
        aus = np.stack([r.frame.aus for r in requests])
        if self.relative_aus:
            photo = np.stack([r.avatar.photo_aus for r in requests])
            aus = np.clip(aus - photo, 0.0, AU_MAX_INTENSITY).astype(np.float32)
        return images, aus

    def draw(self, requests: Sequence[RenderRequest]) -> list[FaceLayers]:
        color, mask = self.generator.run(*self._inputs(requests))
        return [FaceLayers(c, m) for c, m in zip(color, mask)]

    def pictures(self, requests: Sequence[RenderRequest]) -> list[ComposedFrame]:
        """On the GPU when there is a compositor: the generator's outputs never come back to the host."""
        if self.compositor is None:
            return super().pictures(requests)
        assert isinstance(self.generator, DeviceGenerator)
        size = requests[0].avatar.crop.shape[-1]
        color_bytes, mask_bytes = 3 * size * size * 4, size * size * 4
        pictures: list[ComposedFrame] = []
        for start, stop, color, mask in self.generator.device_slices(*self._inputs(requests)):
            faces = [
                DeviceFace(
                    portrait=r.avatar.portrait,
                    portrait_i420=r.avatar.portrait_i420,
                    box=r.avatar.crop_box,
                    color=color + k * color_bytes,
                    mask=mask + k * mask_bytes,
                    motion=head_motion(r.avatar, r.frame.head),
                )
                for k, r in enumerate(requests[start:stop])
            ]
            pictures += self.compositor.compose(faces, size)
        return pictures


class WarpFaces(FaceRenderer):
    """The instant renderer: the photo's own landmarks moved by the AU table, no training.

    Each avatar is rigged once (:class:`engine.avatar.warp.rig.WarpRig`)
    on first use or :meth:`prepare`; the rig lives as long as the
    avatar. An avatar without landmarks is drawn still (its photo, unchanged).
    Safe to call from several threads.
    """

    name = "warp"

    def __init__(self) -> None:
        self._rigs: weakref.WeakKeyDictionary[Avatar, WarpRig | None] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def prepare(self, avatar: Avatar) -> None:
        self._rig(avatar)

    def draw(self, requests: Sequence[RenderRequest]) -> list[FaceLayers]:
        layers = []
        for request in requests:
            rig = self._rig(request.avatar)
            layers.append(_still_layers() if rig is None else rig.layers(request.frame.aus))
        return layers

    def _rig(self, avatar: Avatar) -> WarpRig | None:
        with self._lock:
            if avatar not in self._rigs:
                self._rigs[avatar] = rig_avatar(avatar)
            return self._rigs[avatar]


def rig_avatar(avatar: Avatar) -> WarpRig | None:
    """The warp rig of ``avatar`` at its working size (``WARP_MAX_SIZE_PX``), None without landmarks."""
    if avatar.landmarks is None:
        return None
    box = avatar.crop_box
    size = int(min(max(round(box.size), WARP_MIN_SIZE_PX), WARP_MAX_SIZE_PX))
    return WarpRig.of_portrait(avatar.portrait, box, size, avatar.landmarks, avatar.photo_aus)


def _still_layers(size: int = 8) -> FaceLayers:
    """Layers that keep the photo everywhere (attention 1, no shift)."""
    return FaceLayers(color=np.zeros((3, size, size), np.float32), mask=np.ones((1, size, size), np.float32))


class Renderer:
    """Draws a batch of faces and composes each into its portrait.

    faces: the face renderer; a bare ``GeneratorBackend`` is wrapped in
        :class:`GanimationFaces` (absolute AUs).
    """

    def __init__(self, faces: FaceRenderer | GeneratorBackend) -> None:
        self.faces = faces if isinstance(faces, FaceRenderer) else GanimationFaces(faces)
        host_kernels()  # the CPU compositor is built now, not on the first frame

    @property
    def parallel_runs(self) -> int:
        """How many ``render`` calls may run at once (the face renderer's)."""
        return self.faces.parallel_runs

    def render(self, requests: Sequence[RenderRequest]) -> list[VideoFrame]:
        """Render a batch; stamps each frame's trace with the batch's start and end."""
        if not requests:
            return []
        start = time.perf_counter()
        pictures = self.faces.pictures(requests)
        end = time.perf_counter()
        frames = []
        for request, picture in zip(requests, pictures):
            frame = request.frame
            frame.trace.render_start_s = start
            frame.trace.render_end_s = end
            frames.append(VideoFrame(frame.index, picture.rgb, frame.aus, frame.trace, i420=picture.i420))
        return frames
