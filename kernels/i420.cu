// RGB -> I420 of whole frames for a batch (reference.rgb_to_i420, per item).
// Run once per session and output buffer: postprocess then rewrites only the
// blocks around the face box.
//
// Launch: block (32, 4), grid (ceil(max W / 2 / 32), ceil(max H / 2 / 4), B);
// one thread per 2x2 block.

#include "image_ops.cuh"

extern "C" __global__ void rgb_to_i420(const I420Item* __restrict__ items) {
    const I420Item& item = items[blockIdx.z];
    const int bx = blockIdx.x * blockDim.x + threadIdx.x;
    const int by = blockIdx.y * blockDim.y + threadIdx.y;
    if (bx >= item.rgb.width / 2 || by >= item.rgb.height / 2) return;
    i420_frame_block(item, bx, by);
}
