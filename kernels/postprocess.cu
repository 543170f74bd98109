// Fused postprocessing for a batch of sessions, one pass over each face (and
// moving head) region: the face layers (colour, attention, shift) upsampled to
// the portrait's resolution and composed with the photo, head motion, feathered
// edge, and RGB -> I420 of the 2x2 blocks that cover the compose rect
// (reference.compose and rgb_to_i420, per item).
//
// Outside those blocks the output frames are not touched: they must already
// hold the portrait (RGB) and its I420 (rgb_to_i420 in i420.cu, once per
// session and output buffer).
//
// Launch: block (32, 4), grid (ceil(max blocks across / 32), ceil(max blocks
// down / 4), B); one thread per 2x2 block of portrait pixels. Threads past
// their own item's rect return at once.

#include "image_ops.cuh"

// feather: float32 (size, size) in [0, 1], shared by the batch.
extern "C" __global__ void postprocess(
    const PostprocessItem* __restrict__ items, const float* __restrict__ feather, int size) {
    const PostprocessItem& item = items[blockIdx.z];
    const int bx = first_block(item.x_start) + blockIdx.x * blockDim.x + threadIdx.x;
    const int by = first_block(item.y_start) + blockIdx.y * blockDim.y + threadIdx.y;
    if (bx >= stop_block(item.x_stop) || by >= stop_block(item.y_stop)) return;
    postprocess_block(item, feather, size, bx, by);
}
