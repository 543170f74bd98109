// Per-pixel arithmetic of the image ops, shared by the CUDA kernels and the
// host build that tests them against kernels/reference.py.
//
// Every function here is __host__ __device__: nvcc and NVRTC compile it into
// the kernels (preprocess.cu, postprocess.cu, i420.cu); g++ compiles the very
// same functions into the host library (host_ops.cpp), with __host__ and
// __device__ defined away. The float32 arithmetic follows the evaluation order
// written in reference.py's docstrings, one rounding per operation:
//
// - on the device through the round-to-nearest intrinsics (__fmul_rn,
//   __fadd_rn, __fsub_rn, __fdiv_rn), which the compiler never contracts into
//   an FMA whatever --fmad says, and which keep denormals unless -ftz=true;
// - on the host through plain operators, built with -ffp-contract=off and
//   without -ffast-math (IEEE binary32 on SSE: the same roundings).
//
// Standard headers only outside NVRTC, which has none (it knows floorf, rintf,
// fminf and fmaxf as built-ins).

#pragma once

#if !defined(__CUDACC_RTC__)
#include <math.h>
#include <string.h>
#endif

#if !defined(__CUDACC__)
#define __host__
#define __device__
#define __forceinline__ inline
#endif

#define IMAGE_OPS_FN __host__ __device__ __forceinline__

// Full unrolling where nvcc would otherwise keep a small array in local memory.
#if defined(__CUDACC__)
#define IMAGE_OPS_UNROLL _Pragma("unroll")
#else
#define IMAGE_OPS_UNROLL
#endif

// ---------------------------------------------------------------------------
// Batch item descriptors. The Python side packs the same layouts
// (kernels/items.py, numpy structured dtypes with align=True); the sizes are
// pinned here and checked there.

// A uint8 (height, width, 3) image: element (y, x, c) lives at
// data + y * stride_y + x * stride_x + c * stride_c (strides in bytes, may be
// negative). Used read-only for portraits and read-write for output frames.
struct ImageU8 {
    unsigned char* data;
    long long stride_y;
    long long stride_x;
    long long stride_c;
    int height;
    int width;
};

// I420 planes of a (height, width) frame, height and width even: Y (height,
// width) with rows y_pitch bytes apart, U and V (height / 2, width / 2) with
// rows uv_pitch bytes apart.
struct I420Planes {
    unsigned char* y;
    unsigned char* u;
    unsigned char* v;
    long long y_pitch;
    long long uv_pitch;
};

// A square crop box in portrait pixels: f32 of kernels.geometry.CropBox.
struct Box {
    float x0;
    float y0;
    float size;
};

// One session's crop for the generator: preprocess samples `box` of `portrait`.
struct PreprocessItem {
    ImageU8 portrait;
    Box box;
};

// One session's frame: postprocess composes its face layers into `portrait` at
// the portrait's resolution (reference.compose) and writes the result into
// `rgb` and/or `i420` (null data = skip). color: float32 (3, S, S) in [-1, 1];
// mask: float32 (1, S, S) in [0, 1]; shift: float32 (2, S, S) portrait pixels,
// or null for none; all contiguous. motion_weight: float32 (motion_size,
// motion_size) over motion_box, or null for no head motion; motion_matrix: the
// (2, 3) head matrix, row-major. rect = reference.compose_rect(box, H, W,
// motion) as [y_start, y_stop) x [x_start, x_stop), computed on the host.
struct PostprocessItem {
    ImageU8 portrait;
    ImageU8 rgb;
    I420Planes i420;
    const float* color;
    const float* mask;
    const float* shift;
    const float* motion_weight;
    Box box;
    Box motion_box;
    float motion_matrix[6];
    int motion_size;
    int y_start;
    int y_stop;
    int x_start;
    int x_stop;
};

// One full frame converted to I420 (once per session: the unchanged frame).
struct I420Item {
    ImageU8 rgb;
    I420Planes i420;
};

static_assert(sizeof(ImageU8) == 40, "ImageU8 layout is shared with kernels/items.py");
static_assert(sizeof(I420Planes) == 40, "I420Planes layout is shared with kernels/items.py");
static_assert(sizeof(PreprocessItem) == 56, "PreprocessItem layout is shared with kernels/items.py");
static_assert(sizeof(PostprocessItem) == 224, "PostprocessItem layout is shared with kernels/items.py");
static_assert(sizeof(I420Item) == 80, "I420Item layout is shared with kernels/items.py");

// ---------------------------------------------------------------------------
// float32 operations, one rounding each, never contracted.

IMAGE_OPS_FN float add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fadd_rn(a, b);
#else
    return a + b;
#endif
}

IMAGE_OPS_FN float sub_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fsub_rn(a, b);
#else
    return a - b;
#endif
}

IMAGE_OPS_FN float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fmul_rn(a, b);
#else
    return a * b;
#endif
}

IMAGE_OPS_FN float div_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fdiv_rn(a, b);
#else
    return a / b;
#endif
}

// clamp(v, lo, hi) = min(max(v, lo), hi), as numpy's clip.
IMAGE_OPS_FN float clamp_f(float v, float lo, float hi) {
#if defined(__CUDACC__)
    return fminf(fmaxf(v, lo), hi);
#else
    // The same values as fminf(fmaxf(v, lo), hi), NaN included (lo), without the
    // two libm calls g++ makes of them: the compositor clamps ~12 times a pixel.
    return !(v >= lo) ? lo : (v > hi ? hi : v);
#endif
}

// float32 -> IEEE binary16 bits, round to nearest even (numpy's astype(float16)).
IMAGE_OPS_FN unsigned short f32_to_f16_bits(float value) {
#if defined(__CUDA_ARCH__)
    unsigned short half;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(half) : "f"(value));
    return half;
#else
    unsigned int bits;
    memcpy(&bits, &value, sizeof bits);
    const unsigned int sign = (bits >> 16) & 0x8000u;
    const unsigned int magnitude = bits & 0x7fffffffu;
    if (magnitude > 0x7f800000u) return (unsigned short)(sign | 0x7e00u);  // NaN
    if (magnitude >= 0x477ff000u) return (unsigned short)(sign | 0x7c00u);  // >= 65520: inf
    if (magnitude < 0x38800000u) {  // below 2^-14: a half subnormal (units of 2^-24) or 0
        const unsigned int exponent = magnitude >> 23;
        if (exponent < 102) return (unsigned short)sign;  // below 2^-25: rounds to 0
        const unsigned int mantissa = (magnitude & 0x7fffffu) | 0x800000u;
        const unsigned int shift = 126 - exponent;  // 14..24
        unsigned int half = mantissa >> shift;
        const unsigned int rest = mantissa & ((1u << shift) - 1);
        const unsigned int tie = 1u << (shift - 1);
        if (rest > tie || (rest == tie && (half & 1u))) half += 1;
        return (unsigned short)(sign | half);
    }
    unsigned int half = (magnitude >> 13) - (112u << 10);  // rebias 127 -> 15
    const unsigned int rest = magnitude & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) half += 1;  // may carry into the exponent
    return (unsigned short)(sign | half);
#endif
}

// ---------------------------------------------------------------------------
// Bilinear sampling with edge clamp (reference.py module docstring).

// The two taps and the fraction along one axis of an image n pixels long.
struct Taps {
    int i0;
    int i1;
    float frac;
};

IMAGE_OPS_FN Taps make_taps(float coord, int n) {
    const float whole = floorf(coord);
    const float last = (float)(n - 1);
    Taps taps;
    taps.frac = sub_rn(coord, whole);
    taps.i0 = (int)clamp_f(whole, 0.0f, last);
    taps.i1 = (int)clamp_f(add_rn(whole, 1.0f), 0.0f, last);
    return taps;
}

// (1 - frac) * a + frac * b: two products, then the sum.
IMAGE_OPS_FN float lerp(float a, float b, float frac) {
    return add_rn(mul_rn(sub_rn(1.0f, frac), a), mul_rn(frac, b));
}

// Bilinear value from the four taps v[row][col] (rows i0, i1; cols i0, i1).
IMAGE_OPS_FN float bilinear(float v00, float v01, float v10, float v11, Taps rows, Taps cols) {
    const float top = lerp(v00, v01, cols.frac);
    const float bottom = lerp(v10, v11, cols.frac);
    return lerp(top, bottom, rows.frac);
}

IMAGE_OPS_FN const unsigned char* pixel_at(const ImageU8& image, int y, int x) {
    return image.data + y * image.stride_y + x * image.stride_x;
}

// Catmull-Rom cubic sampling (reference.py module docstring): the four taps
// floor(coord) - 1 .. + 2 along one axis of an image n pixels long, edge
// clamped, and their weights.
struct CubicTaps {
    int i[4];
    float w[4];
};

IMAGE_OPS_FN CubicTaps make_cubic_taps(float coord, int n) {
    const float whole = floorf(coord);
    const float t = sub_rn(coord, whole);
    const float last = (float)(n - 1);
    CubicTaps taps;
    IMAGE_OPS_UNROLL for (int k = 0; k < 4; ++k) taps.i[k] = (int)clamp_f(add_rn(whole, (float)(k - 1)), 0.0f, last);
    taps.w[0] = mul_rn(sub_rn(mul_rn(add_rn(mul_rn(-0.5f, t), 1.0f), t), 0.5f), t);
    taps.w[1] = add_rn(mul_rn(mul_rn(sub_rn(mul_rn(1.5f, t), 2.5f), t), t), 1.0f);
    taps.w[2] = mul_rn(add_rn(mul_rn(add_rn(mul_rn(-1.5f, t), 2.0f), t), 0.5f), t);
    taps.w[3] = mul_rn(mul_rn(sub_rn(mul_rn(0.5f, t), 0.5f), t), t);
    return taps;
}

// The three channels of image at the taps: per channel, each row's four
// columns summed in order, then the four rows.
IMAGE_OPS_FN void cubic_sample_rgb(const ImageU8& image, const CubicTaps& rows, const CubicTaps& cols, float out[3]) {
    IMAGE_OPS_UNROLL for (int r = 0; r < 4; ++r) {
        const unsigned char* line = image.data + rows.i[r] * image.stride_y;
        const unsigned char* p[4];
        IMAGE_OPS_UNROLL for (int k = 0; k < 4; ++k) p[k] = line + cols.i[k] * image.stride_x;
        IMAGE_OPS_UNROLL for (int c = 0; c < 3; ++c) {
            const long long at = c * image.stride_c;
            float h = mul_rn(cols.w[0], (float)p[0][at]);
            h = add_rn(h, mul_rn(cols.w[1], (float)p[1][at]));
            h = add_rn(h, mul_rn(cols.w[2], (float)p[2][at]));
            h = add_rn(h, mul_rn(cols.w[3], (float)p[3][at]));
            const float weighted = mul_rn(h, rows.w[r]);
            out[c] = r == 0 ? weighted : add_rn(out[c], weighted);
        }
    }
}

// ---------------------------------------------------------------------------
// Preprocessing: reference.crop_resize_normalize.

// Output pixel (u, v) of the size x size crop of item's box, RGB in [-1, 1].
IMAGE_OPS_FN void crop_pixel(const PreprocessItem& item, int size, int u, int v, float rgb[3]) {
    const float scale = div_rn(item.box.size, (float)size);
    const float xs = sub_rn(add_rn(item.box.x0, mul_rn(add_rn((float)u, 0.5f), scale)), 0.5f);
    const float ys = sub_rn(add_rn(item.box.y0, mul_rn(add_rn((float)v, 0.5f), scale)), 0.5f);
    const Taps cols = make_taps(xs, item.portrait.width);
    const Taps rows = make_taps(ys, item.portrait.height);
    const unsigned char* p00 = pixel_at(item.portrait, rows.i0, cols.i0);
    const unsigned char* p01 = pixel_at(item.portrait, rows.i0, cols.i1);
    const unsigned char* p10 = pixel_at(item.portrait, rows.i1, cols.i0);
    const unsigned char* p11 = pixel_at(item.portrait, rows.i1, cols.i1);
    for (int c = 0; c < 3; ++c) {
        const long long at = c * item.portrait.stride_c;
        const float value = bilinear(p00[at], p01[at], p10[at], p11[at], rows, cols);
        rgb[c] = sub_rn(div_rn(value, 127.5f), 1.0f);
    }
}

// Index of (channel, v, u) of batch item b in a contiguous (B, 3, size, size) tensor.
IMAGE_OPS_FN long long crop_index(int b, int channel, int v, int u, int size) {
    return (((long long)b * 3 + channel) * size + v) * size + u;
}

// ---------------------------------------------------------------------------
// Postprocessing: reference.compose.

// Bilinear sample of a contiguous float32 (size, size) plane at the given taps.
IMAGE_OPS_FN float sample_plane(const float* plane, int size, Taps rows, Taps cols) {
    return bilinear(plane[rows.i0 * size + cols.i0], plane[rows.i0 * size + cols.i1],
                    plane[rows.i1 * size + cols.i0], plane[rows.i1 * size + cols.i1], rows, cols);
}

// Grid coordinate of portrait position q on one axis of a box: ((q - origin) * inverse) - 0.5.
IMAGE_OPS_FN float to_grid(float q, float origin, float inverse) {
    return sub_rn(mul_rn(sub_rn(q, origin), inverse), 0.5f);
}

// Portrait pixel (x, y) inside the compose rect: head motion, face layers
// sampled at the moved position, the photo resampled (cubic) where the layers
// shift it or the head moves it, colour blended in. feather: float32 (size, size) in [0, 1].
//
// Two shortcuts skip work whose result is known, and give the same bytes:
// where the head's weight is exactly 0 the pixel does not move (the motion
// would add (h - q) * 0), and where the feather is exactly 0 (its border, and
// everywhere outside the crop box, which samples the border) the layers change
// nothing (alpha 0: no shift, w = 0, keep = 1). With head motion most of the
// rect is such pixels: the head's box is about three face heights across.
IMAGE_OPS_FN void composed_pixel(
    const PostprocessItem& item, const float* feather, int size, int x, int y, unsigned char rgb[3]) {
    const float cx = add_rn((float)x, 0.5f);
    const float cy = add_rn((float)y, 0.5f);
    float qx = cx;
    float qy = cy;
    if (item.motion_weight) {
        const int msize = item.motion_size;
        const float minv = div_rn((float)msize, item.motion_box.size);
        const Taps mcols = make_taps(to_grid(qx, item.motion_box.x0, minv), msize);
        const Taps mrows = make_taps(to_grid(qy, item.motion_box.y0, minv), msize);
        const float follow = sample_plane(item.motion_weight, msize, mrows, mcols);
        if (follow != 0.0f) {
            const float* k = item.motion_matrix;
            const float hx = add_rn(add_rn(mul_rn(k[0], qx), mul_rn(k[1], qy)), k[2]);
            const float hy = add_rn(add_rn(mul_rn(k[3], qx), mul_rn(k[4], qy)), k[5]);
            qx = add_rn(qx, mul_rn(sub_rn(hx, qx), follow));
            qy = add_rn(qy, mul_rn(sub_rn(hy, qy), follow));
        }
    }
    const float inverse = div_rn((float)size, item.box.size);
    const Taps cols = make_taps(to_grid(qx, item.box.x0, inverse), size);
    const Taps rows = make_taps(to_grid(qy, item.box.y0, inverse), size);
    const float alpha = sample_plane(feather, size, rows, cols);
    if (alpha == 0.0f && qx == cx && qy == cy) {  // the photo's own pixel (most of the head's box)
        const unsigned char* p = pixel_at(item.portrait, y, x);
        for (int c = 0; c < 3; ++c) rgb[c] = p[c * item.portrait.stride_c];
        return;
    }
    float w = 0.0f;
    if (alpha != 0.0f) {
        const float attention = sample_plane(item.mask, size, rows, cols);
        if (item.shift) {
            qx = add_rn(qx, mul_rn(alpha, sample_plane(item.shift, size, rows, cols)));
            qy = add_rn(qy, mul_rn(alpha, sample_plane(item.shift + size * size, size, rows, cols)));
        }
        w = mul_rn(sub_rn(1.0f, attention), alpha);
    }
    const float keep = sub_rn(1.0f, w);
    float photos[3];
    if (qx == cx && qy == cy) {  // not moved: the cubic would give the pixel itself
        const unsigned char* p = pixel_at(item.portrait, y, x);
        for (int c = 0; c < 3; ++c) photos[c] = (float)p[c * item.portrait.stride_c];
    } else {
        const CubicTaps pcols = make_cubic_taps(sub_rn(qx, 0.5f), item.portrait.width);
        const CubicTaps prows = make_cubic_taps(sub_rn(qy, 0.5f), item.portrait.height);
        cubic_sample_rgb(item.portrait, prows, pcols, photos);
    }
    for (int c = 0; c < 3; ++c) {
        const float photo = photos[c];
        if (w == 0.0f) {
            rgb[c] = (unsigned char)clamp_f(rintf(photo), 0.0f, 255.0f);
            continue;
        }
        const float colour = mul_rn(add_rn(sample_plane(item.color + c * size * size, size, rows, cols), 1.0f), 127.5f);
        const float out = add_rn(mul_rn(keep, photo), mul_rn(w, colour));
        rgb[c] = (unsigned char)clamp_f(rintf(out), 0.0f, 255.0f);
    }
}

// ---------------------------------------------------------------------------
// RGB -> I420, BT.601 limited range, integer only: reference.rgb_to_i420.

IMAGE_OPS_FN unsigned char luma(const unsigned char rgb[3]) {
    return (unsigned char)((16829 * rgb[0] + 33039 * rgb[1] + 6416 * rgb[2] + (16 << 16) + (1 << 15)) >> 16);
}

// Writes Y of the 2x2 block (bx, by) (pixels px[dy][dx] at (2 bx + dx, 2 by + dy))
// and U, V of its block average.
IMAGE_OPS_FN void store_i420_block(
    const I420Planes& planes, int bx, int by, const unsigned char px[2][2][3]) {
    int sums[3];
    for (int c = 0; c < 3; ++c) sums[c] = px[0][0][c] + px[0][1][c] + px[1][0][c] + px[1][1][c];
    for (int dy = 0; dy < 2; ++dy) {
        unsigned char* row = planes.y + (2 * by + dy) * planes.y_pitch + 2 * bx;
        row[0] = luma(px[dy][0]);
        row[1] = luma(px[dy][1]);
    }
    const int offset = (128 << 18) + (1 << 17);
    planes.u[by * planes.uv_pitch + bx] =
        (unsigned char)((-9714 * sums[0] - 19070 * sums[1] + 28784 * sums[2] + offset) >> 18);
    planes.v[by * planes.uv_pitch + bx] =
        (unsigned char)((28784 * sums[0] - 24103 * sums[1] - 4681 * sums[2] + offset) >> 18);
}

// Block (bx, by) of a full frame: read 2x2 pixels of item.rgb, write I420.
IMAGE_OPS_FN void i420_frame_block(const I420Item& item, int bx, int by) {
    unsigned char px[2][2][3];
    for (int dy = 0; dy < 2; ++dy)
        for (int dx = 0; dx < 2; ++dx) {
            const unsigned char* p = pixel_at(item.rgb, 2 * by + dy, 2 * bx + dx);
            for (int c = 0; c < 3; ++c) px[dy][dx][c] = p[c * item.rgb.stride_c];
        }
    store_i420_block(item.i420, bx, by, px);
}

// ---------------------------------------------------------------------------
// The fused postprocess, one 2x2 block of portrait pixels per call.

// The 2x2 blocks covering item's compose rect: [first, stop) along one axis.
IMAGE_OPS_FN int first_block(int start) { return start >> 1; }
IMAGE_OPS_FN int stop_block(int stop) { return (stop + 1) >> 1; }

// Composes the pixels of block (bx, by) that lie in the compose rect, writes them to
// item.rgb (if any), and rewrites the block's I420 (if any; the frame's height
// and width are then even, so every block lies wholly in the frame). Pixels of
// the block outside the compose rect keep their portrait values.
IMAGE_OPS_FN void postprocess_block(
    const PostprocessItem& item, const float* feather, int size, int bx, int by) {
    unsigned char px[2][2][3];
    IMAGE_OPS_UNROLL for (int dy = 0; dy < 2; ++dy)
        IMAGE_OPS_UNROLL for (int dx = 0; dx < 2; ++dx) {
            const int x = 2 * bx + dx;
            const int y = 2 * by + dy;
            if (x >= item.portrait.width || y >= item.portrait.height) continue;  // odd frame, RGB only
            if (y >= item.y_start && y < item.y_stop && x >= item.x_start && x < item.x_stop) {
                composed_pixel(item, feather, size, x, y, px[dy][dx]);
                if (item.rgb.data) {
                    unsigned char* out = item.rgb.data + y * item.rgb.stride_y + x * item.rgb.stride_x;
                    for (int c = 0; c < 3; ++c) out[c * item.rgb.stride_c] = px[dy][dx][c];
                }
            } else {
                const unsigned char* p = pixel_at(item.portrait, y, x);
                for (int c = 0; c < 3; ++c) px[dy][dx][c] = p[c * item.portrait.stride_c];
            }
        }
    if (item.i420.y) store_i420_block(item.i420, bx, by, px);
}
