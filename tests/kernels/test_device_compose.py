"""DeviceCompositor: layers on the device, frames back, the same bytes as kernels.compose.compose_frame."""

from typing import Any

import numpy as np
import pytest

from kernels.compose import compose_frame
from kernels.device_compose import DeviceCompositor, DeviceFace
from kernels.geometry import CropBox
from kernels.launch import ImageKernels, address
from kernels.layers import FaceLayers, HeadMotion
from kernels.reference import feather_mask, rgb_to_i420


@pytest.fixture(params=["emulated", pytest.param("gpu", marks=pytest.mark.gpu)])
def compositor(request: pytest.FixtureRequest) -> DeviceCompositor:
    """The compositor over the CPU stand-in of cuda.core, or over the real one on a GPU."""
    ops = request.getfixturevalue(f"{request.param}_ops")
    return DeviceCompositor(ops.kernels)


def layers(rng: np.random.Generator, size: int) -> FaceLayers:
    return FaceLayers(
        color=rng.uniform(-1, 1, (3, size, size)).astype(np.float32),
        mask=rng.uniform(0, 1, (1, size, size)).astype(np.float32),
        shift=rng.uniform(-3, 3, (2, size, size)).astype(np.float32),
    )


def test_a_batch_of_frames_twice(compositor: DeviceCompositor) -> None:
    rng = np.random.default_rng(8)
    size = 32
    portraits = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in ((40, 48, 3), (60, 36, 3))]
    i420s = [rgb_to_i420(p) for p in portraits]
    boxes = [CropBox(6.5, 4.0, 30.0), CropBox(-3.0, 12.25, 28.0)]
    motion = HeadMotion(
        matrix=np.array([[1.0, -0.05, 1.0], [0.05, 1.0, -0.5]], np.float32),
        box=CropBox(0.0, 0.0, 40.0),
        weight=feather_mask(16, ramp_frac=0.3),
    )
    kernels: ImageKernels = compositor.kernels
    for _ in range(2):  # the second time, portraits and weights come from the cache
        faces, wanted, kept = [], [], []
        for portrait, i420, box, head in zip(portraits, i420s, boxes, (None, motion)):
            face = layers(rng, size)
            color, mask = (upload(compositor, a) for a in (face.color, face.mask))
            kept += [color, mask]
            faces.append(DeviceFace(portrait, i420, box, address(color), address(mask), face.shift, head))
            wanted.append(compose_frame(portrait, i420, box, face, head))
        for got, want in zip(compositor.compose(faces, size), wanted):
            np.testing.assert_array_equal(got.rgb, want.rgb)
            for plane, expected in zip(got.i420, want.i420):
                np.testing.assert_array_equal(plane, expected)
    assert kernels is compositor.kernels and compositor.compose([], size) == []


def upload(compositor: DeviceCompositor, array: np.ndarray) -> Any:
    buffer = compositor.device.allocate(array.nbytes, stream=compositor.stream)
    host = compositor.kernels.core.Buffer.from_handle(array.ctypes.data, array.nbytes, owner=array)
    buffer.copy_from(host, stream=compositor.stream)
    return buffer
