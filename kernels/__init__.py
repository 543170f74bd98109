"""Image pre/post-processing ops: CUDA sources and launchers beside their numpy references.

One function per fused step, the numpy implementation and the CUDA one behind it:

- post-processing (face layers composed into the portrait at full resolution,
  head motion, feathered edge, I420 of the changed blocks): on the CPU
  ``compose.compose_frame`` (the ``postprocess`` kernel's code compiled for the
  CPU, ``host_build``; without a compiler ``reference.compose`` +
  ``reference.update_i420``),
  on the GPU ``device_compose.DeviceCompositor.compose`` (a batch, the layers
  already on the device; the ``postprocess`` kernel);
- pre-processing (crop, resize, normalise): ``reference.crop_resize_normalize``,
  on the GPU ``launch.ImageKernels.preprocess``;
- RGB -> I420 of whole frames: ``reference.rgb_to_i420``, ``launch.ImageKernels.rgb_to_i420``.

``geometry`` holds the crop box and ``layers`` what renderers hand over. The
tests hold each CUDA kernel to its reference bit for bit. Nothing here imports
``engine``.
"""
