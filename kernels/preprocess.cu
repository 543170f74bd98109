// Preprocessing for a batch of sessions: crop each portrait's box, resize it
// bilinearly to size x size and map it to [-1, 1], into one (B, 3, size, size)
// tensor for the generator (reference.crop_resize_normalize, per item).
//
// Launch: block (32, 8), grid (ceil(size / 32), ceil(size / 8), B); one thread
// per output pixel (u, v) writes its 3 channels.

#include "image_ops.cuh"

// out: float32 (B, 3, size, size), contiguous.
extern "C" __global__ void preprocess_f32(
    const PreprocessItem* __restrict__ items, int size, float* __restrict__ out) {
    const int u = blockIdx.x * blockDim.x + threadIdx.x;
    const int v = blockIdx.y * blockDim.y + threadIdx.y;
    if (u >= size || v >= size) return;
    const int b = blockIdx.z;
    float rgb[3];
    crop_pixel(items[b], size, u, v, rgb);
    for (int c = 0; c < 3; ++c) out[crop_index(b, c, v, u, size)] = rgb[c];
}

// out: float16 (B, 3, size, size) as raw bits, contiguous; each value is the
// float32 result rounded to nearest even.
extern "C" __global__ void preprocess_f16(
    const PreprocessItem* __restrict__ items, int size, unsigned short* __restrict__ out) {
    const int u = blockIdx.x * blockDim.x + threadIdx.x;
    const int v = blockIdx.y * blockDim.y + threadIdx.y;
    if (u >= size || v >= size) return;
    const int b = blockIdx.z;
    float rgb[3];
    crop_pixel(items[b], size, u, v, rgb);
    for (int c = 0; c < 3; ++c) out[crop_index(b, c, v, u, size)] = f32_to_f16_bits(rgb[c]);
}
