"""Batch item descriptors of the image kernels, packed as the C structs of ``image_ops.cuh``.

A kernel launch covers a batch of sessions; each session brings its own
portrait (any size), box and buffers, described by one item. The Python side
describes buffers by address, so the same items serve device memory (the
launcher, ``kernels.launch``) and host memory (the tests' host build,
``kernels.host_build``). The ``pack_*`` functions turn items into numpy
structured arrays whose bytes are the C structs' (``align=True`` reproduces the
C layout; ``image_ops.cuh`` pins the sizes, a test compares every offset).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kernels.geometry import CropBox
from kernels.layers import HeadMotion
from kernels.reference import compose_rect

KERNELS_DIR = Path(__file__).resolve().parent
"""The CUDA sources: ``image_ops.cuh``, whose structs this module packs, and the ``.cu`` and ``.cpp`` files."""

IMAGE_U8 = np.dtype(
    [
        ("data", np.uintp),
        ("stride_y", np.int64),
        ("stride_x", np.int64),
        ("stride_c", np.int64),
        ("height", np.int32),
        ("width", np.int32),
    ],
    align=True,
)
I420_PLANES = np.dtype(
    [("y", np.uintp), ("u", np.uintp), ("v", np.uintp), ("y_pitch", np.int64), ("uv_pitch", np.int64)],
    align=True,
)
BOX = np.dtype([("x0", np.float32), ("y0", np.float32), ("size", np.float32)], align=True)
PREPROCESS_ITEM = np.dtype([("portrait", IMAGE_U8), ("box", BOX)], align=True)
POSTPROCESS_ITEM = np.dtype(
    [
        ("portrait", IMAGE_U8),
        ("rgb", IMAGE_U8),
        ("i420", I420_PLANES),
        ("color", np.uintp),
        ("mask", np.uintp),
        ("shift", np.uintp),
        ("motion_weight", np.uintp),
        ("box", BOX),
        ("motion_box", BOX),
        ("motion_matrix", np.float32, (6,)),
        ("motion_size", np.int32),
        ("y_start", np.int32),
        ("y_stop", np.int32),
        ("x_start", np.int32),
        ("x_stop", np.int32),
    ],
    align=True,
)
I420_ITEM = np.dtype([("rgb", IMAGE_U8), ("i420", I420_PLANES)], align=True)

STRUCTS = {
    "ImageU8": IMAGE_U8,
    "I420Planes": I420_PLANES,
    "Box": BOX,
    "PreprocessItem": PREPROCESS_ITEM,
    "PostprocessItem": POSTPROCESS_ITEM,
    "I420Item": I420_ITEM,
}
"""C struct name -> numpy dtype, for the layout test."""


@dataclass(frozen=True)
class ImageRef:
    """A uint8 (height, width, 3) RGB image by address.

    Element (y, x, c) is at ``address + y * strides[0] + x * strides[1] +
    c * strides[2]`` (bytes; strides may be negative).
    """

    address: int
    height: int
    width: int
    strides: tuple[int, int, int]

    @classmethod
    def packed(cls, address: int, height: int, width: int) -> "ImageRef":
        """A C-contiguous (height, width, 3) image at ``address``."""
        return cls(address, height, width, (3 * width, 3, 1))

    @classmethod
    def of_array(cls, array: np.ndarray) -> "ImageRef":
        """A host numpy uint8 (H, W, 3) array, any strides (the array must outlive the use)."""
        if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
            raise ValueError(f"expected uint8 (H, W, 3), got {array.dtype} {array.shape}")
        height, width = array.shape[:2]
        return cls(array.ctypes.data, height, width, tuple(array.strides))  # type: ignore[arg-type]


@dataclass(frozen=True)
class I420Ref:
    """I420 planes of a frame by address: Y (H, W), U and V (H/2, W/2), rows ``*_pitch`` bytes apart."""

    y: int
    u: int
    v: int
    y_pitch: int
    uv_pitch: int

    @classmethod
    def packed(cls, address: int, height: int, width: int) -> "I420Ref":
        """One contiguous I420 buffer of ``height * width * 3 // 2`` bytes: Y, then U, then V."""
        luma = height * width
        return cls(address, address + luma, address + luma + luma // 4, width, width // 2)


@dataclass(frozen=True)
class PreprocessJob:
    """One session's generator input: ``box`` of ``portrait`` (crop_resize_normalize)."""

    portrait: ImageRef
    box: CropBox


@dataclass(frozen=True)
class MotionRef:
    """A head motion (``kernels.layers.HeadMotion``) with its weight map by address.

    Attributes:
        weight: address of float32 (size, size) in [0, 1], contiguous.
        size: the weight map's side M.
        box: the square region the weight map covers.
        matrix: (2, 3) head matrix, portrait pixels (row-major; sent as float32).
    """

    weight: int
    size: int
    box: CropBox
    matrix: tuple[float, float, float, float, float, float]


def motion_ref(motion: HeadMotion, weight_address: int) -> MotionRef:
    """``motion`` described for a kernel, its weight map already at ``weight_address`` (float32, contiguous)."""
    matrix = tuple(float(v) for v in np.asarray(motion.matrix, dtype=np.float32).ravel())
    return MotionRef(weight_address, motion.weight.shape[0], motion.box, matrix)  # type: ignore[arg-type]


@dataclass(frozen=True)
class PostprocessJob:
    """One session's frame: compose face layers into ``portrait``, write ``rgb`` and/or ``i420``.

    Attributes:
        portrait: the session's uint8 (H, W, 3) portrait, read only.
        box: the crop box the layers cover.
        color: address of float32 (3, S, S) in [-1, 1], contiguous: the colour map C.
        mask: address of float32 (1, S, S) in [0, 1], contiguous: the attention A.
        shift: address of float32 (2, S, S), contiguous, portrait pixels; 0 for none.
        motion: the head's motion, or None.
        rgb: output uint8 (H, W, 3) frame, already holding the portrait, or None.
        i420: output I420 of an (H, W) frame, H and W even, already holding the
            portrait's I420 (``rgb_to_i420``), or None.
    """

    portrait: ImageRef
    box: CropBox
    color: int
    mask: int
    shift: int
    motion: MotionRef | None
    rgb: ImageRef | None
    i420: I420Ref | None


@dataclass(frozen=True)
class I420Job:
    """One whole frame to convert: ``rgb`` (H, W even) -> ``i420``."""

    rgb: ImageRef
    i420: I420Ref


def _image(record: np.ndarray, image: ImageRef | None) -> None:
    if image is None:
        return
    record["data"] = image.address
    record["stride_y"], record["stride_x"], record["stride_c"] = image.strides
    record["height"], record["width"] = image.height, image.width


def _planes(record: np.ndarray, planes: I420Ref | None) -> None:
    if planes is None:
        return
    record["y"], record["u"], record["v"] = planes.y, planes.u, planes.v
    record["y_pitch"], record["uv_pitch"] = planes.y_pitch, planes.uv_pitch


def _box(record: np.ndarray, box: CropBox) -> None:
    record["x0"], record["y0"], record["size"] = (np.float32(v) for v in (box.x0, box.y0, box.size))


def _check_even(image: ImageRef, what: str) -> None:
    if image.height % 2 or image.width % 2:
        raise ValueError(f"{what} needs even height and width, got {image.height}x{image.width}")


def pack_preprocess(jobs: Sequence[PreprocessJob]) -> np.ndarray:
    """``PREPROCESS_ITEM`` records, one per job."""
    records = np.zeros(len(jobs), PREPROCESS_ITEM)
    for record, job in zip(records, jobs, strict=True):
        _image(record["portrait"], job.portrait)
        _box(record["box"], job.box)
    return records


def pack_postprocess(jobs: Sequence[PostprocessJob]) -> np.ndarray:
    """``POSTPROCESS_ITEM`` records, one per job, with the compose rect of each.

    Raises:
        ValueError: a job has neither output, an rgb output of another size than
            its portrait, or an I420 output with an odd frame size.
    """
    records = np.zeros(len(jobs), POSTPROCESS_ITEM)
    for record, job in zip(records, jobs, strict=True):
        portrait = job.portrait
        if job.rgb is None and job.i420 is None:
            raise ValueError("a postprocess job needs an rgb or an i420 output")
        if job.rgb is not None and (job.rgb.height, job.rgb.width) != (portrait.height, portrait.width):
            raise ValueError(
                f"rgb output is {job.rgb.height}x{job.rgb.width}, portrait {portrait.height}x{portrait.width}"
            )
        if job.i420 is not None:
            _check_even(portrait, "I420")
        _image(record["portrait"], portrait)
        _image(record["rgb"], job.rgb)
        _planes(record["i420"], job.i420)
        record["color"], record["mask"], record["shift"] = job.color, job.mask, job.shift
        _box(record["box"], job.box)
        if job.motion is not None:
            record["motion_weight"], record["motion_size"] = job.motion.weight, job.motion.size
            _box(record["motion_box"], job.motion.box)
            record["motion_matrix"] = np.asarray(job.motion.matrix, dtype=np.float32)
        motion_box = None if job.motion is None else job.motion.box
        rect = compose_rect(job.box, portrait.height, portrait.width, motion_box)
        record["y_start"], record["y_stop"], record["x_start"], record["x_stop"] = rect
    return records


def pack_i420(jobs: Sequence[I420Job]) -> np.ndarray:
    """``I420_ITEM`` records, one per job (frames of even height and width)."""
    records = np.zeros(len(jobs), I420_ITEM)
    for record, job in zip(records, jobs, strict=True):
        _check_even(job.rgb, "I420")
        _image(record["rgb"], job.rgb)
        _planes(record["i420"], job.i420)
    return records
