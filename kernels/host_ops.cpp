// The kernels' per-pixel functions compiled for the CPU, for the tests and the
// CPU server's compositor: each entry point loops over the pixels (or 2x2
// blocks) that one kernel launch covers and calls the same image_ops.cuh
// function the kernel's thread calls; host_postprocess has an AVX2 path for
// packed RGB frames (below) that computes the same bytes 8 pixels at a time.
// Built by kernels/host_build.py with -ffp-contract=off; loaded with ctypes.

#include <stddef.h>
#include <string.h>

#include "image_ops.cuh"

#if defined(__x86_64__)
#include <immintrin.h>
#define HOST_OPS_AVX2 1
#endif

#if HOST_OPS_AVX2
// ---------------------------------------------------------------------------
// The compositor, 8 pixels at a time (AVX2), for the CPU that serves without
// a GPU: with head motion the compose rect is the head's box, about three
// face heights across, and composed_pixel alone took most of a frame's
// compose. compose8 runs composed_pixel lane by lane with the same float32
// operations in the same order (IEEE single per lane, no FMA), so the bytes
// are composed_pixel's: the tests compare the two. composed_pixel's shortcuts
// are exact no-ops here, so every lane takes one sequence: a cubic at an
// unmoved position weighs its own pixel by exactly 1 and the others by +-0,
// and where the feather is 0 the layers leave the position and the photo
// unchanged. A group whose taps would gather past the portrait's last byte
// goes through composed_pixel.

namespace {

struct Lanes {
    __m256 x;
    __m256 y;
};

__attribute__((target("avx2"))) inline __m256 clamp8(__m256 v, float lo, float hi) {
    // composed_pixel's clamp_f: NaN -> lo (max_ps returns its second operand when unordered).
    return _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(lo)), _mm256_set1_ps(hi));
}

// make_taps on both axes of a float32 (n, n) plane, for 8 grid positions: the four taps' element
// indices and the fractions.
struct PlaneTaps8 {
    __m256i i00, i01, i10, i11;
    __m256 fx, fy;
};

__attribute__((target("avx2"))) inline PlaneTaps8 plane_taps8(int n, __m256 gx, __m256 gy) {
    const float last = (float)(n - 1);
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 wx = _mm256_floor_ps(gx);
    const __m256 wy = _mm256_floor_ps(gy);
    const __m256i x0 = _mm256_cvttps_epi32(clamp8(wx, 0.0f, last));
    const __m256i x1 = _mm256_cvttps_epi32(clamp8(_mm256_add_ps(wx, one), 0.0f, last));
    const __m256i row0 = _mm256_mullo_epi32(_mm256_cvttps_epi32(clamp8(wy, 0.0f, last)), _mm256_set1_epi32(n));
    const __m256i row1 =
        _mm256_mullo_epi32(_mm256_cvttps_epi32(clamp8(_mm256_add_ps(wy, one), 0.0f, last)), _mm256_set1_epi32(n));
    PlaneTaps8 taps;
    taps.i00 = _mm256_add_epi32(row0, x0);
    taps.i01 = _mm256_add_epi32(row0, x1);
    taps.i10 = _mm256_add_epi32(row1, x0);
    taps.i11 = _mm256_add_epi32(row1, x1);
    taps.fx = _mm256_sub_ps(gx, wx);
    taps.fy = _mm256_sub_ps(gy, wy);
    return taps;
}

// sample_plane: lerp per row, then between the rows; lerp(a, b, f) = (1 - f) * a + f * b.
__attribute__((target("avx2"))) inline __m256 sample8(const float* plane, const PlaneTaps8& taps) {
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 gx = _mm256_sub_ps(one, taps.fx);
    const __m256 top = _mm256_add_ps(_mm256_mul_ps(gx, _mm256_i32gather_ps(plane, taps.i00, 4)),
                                     _mm256_mul_ps(taps.fx, _mm256_i32gather_ps(plane, taps.i01, 4)));
    const __m256 bottom = _mm256_add_ps(_mm256_mul_ps(gx, _mm256_i32gather_ps(plane, taps.i10, 4)),
                                        _mm256_mul_ps(taps.fx, _mm256_i32gather_ps(plane, taps.i11, 4)));
    return _mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(one, taps.fy), top), _mm256_mul_ps(taps.fy, bottom));
}

// to_grid: ((q - origin) * inverse) - 0.5.
__attribute__((target("avx2"))) inline __m256 to_grid8(__m256 q, float origin, float inverse) {
    return _mm256_sub_ps(_mm256_mul_ps(_mm256_sub_ps(q, _mm256_set1_ps(origin)), _mm256_set1_ps(inverse)), _mm256_set1_ps(0.5f));
}

// The moved positions of 8 pixels (x .. x + 7, y): composed_pixel's head motion. Lanes whose head weight
// is 0 keep their position by a blend, as composed_pixel's test of the weight does (q + (h - q) * 0
// would be q too, except where h - q is not finite). Pixel centres as (x + 0.5) + lane: exact, as is
// composed_pixel's (x + lane) + 0.5, for any x below 2^22.
// `unmoved`: set when every lane kept its position.
__attribute__((target("avx2"))) inline Lanes moved8(const PostprocessItem& item, int x, int y, bool& unmoved) {
    Lanes q;
    q.x = _mm256_add_ps(_mm256_setr_ps(0.f, 1.f, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f), _mm256_set1_ps((float)x + 0.5f));
    q.y = _mm256_set1_ps(add_rn((float)y, 0.5f));
    unmoved = true;
    if (!item.motion_weight) return q;
    const int msize = item.motion_size;
    const float minv = div_rn((float)msize, item.motion_box.size);
    const __m256 follow = sample8(
        item.motion_weight,
        plane_taps8(msize, to_grid8(q.x, item.motion_box.x0, minv), to_grid8(q.y, item.motion_box.y0, minv)));
    const float* k = item.motion_matrix;
    const __m256 hx = _mm256_add_ps(
        _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(k[0]), q.x), _mm256_mul_ps(_mm256_set1_ps(k[1]), q.y)), _mm256_set1_ps(k[2]));
    const __m256 hy = _mm256_add_ps(
        _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(k[3]), q.x), _mm256_mul_ps(_mm256_set1_ps(k[4]), q.y)), _mm256_set1_ps(k[5]));
    const __m256 still = _mm256_cmp_ps(follow, _mm256_setzero_ps(), _CMP_EQ_OQ);
    unmoved = _mm256_movemask_ps(still) == 0xff;
    Lanes moved;
    moved.x = _mm256_blendv_ps(_mm256_add_ps(q.x, _mm256_mul_ps(_mm256_sub_ps(hx, q.x), follow)), q.x, still);
    moved.y = _mm256_blendv_ps(_mm256_add_ps(q.y, _mm256_mul_ps(_mm256_sub_ps(hy, q.y), follow)), q.y, still);
    return moved;
}

struct CubicTaps8 {
    __m256i offset[4];  // byte offsets of the taps: rows * stride_y or columns * 3
    __m256 w[4];
};

// make_cubic_taps for 8 coordinates; offsets are the taps' indices times `step` bytes.
__attribute__((target("avx2"))) inline CubicTaps8 cubic_taps8(__m256 coord, int n, int step) {
    const __m256 whole = _mm256_floor_ps(coord);
    const __m256 t = _mm256_sub_ps(coord, whole);
    CubicTaps8 taps;
    for (int k = 0; k < 4; ++k) {
        const __m256 index = clamp8(_mm256_add_ps(whole, _mm256_set1_ps((float)(k - 1))), 0.0f, (float)(n - 1));
        taps.offset[k] = _mm256_mullo_epi32(_mm256_cvttps_epi32(index), _mm256_set1_epi32(step));
    }
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 half = _mm256_set1_ps(0.5f);
    taps.w[0] = _mm256_mul_ps(
        _mm256_sub_ps(_mm256_mul_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(-0.5f), t), one), t), half), t);
    taps.w[1] = _mm256_add_ps(
        _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_mul_ps(_mm256_set1_ps(1.5f), t), _mm256_set1_ps(2.5f)), t), t), one);
    taps.w[2] = _mm256_mul_ps(
        _mm256_add_ps(_mm256_mul_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(-1.5f), t), _mm256_set1_ps(2.0f)), t), half), t);
    taps.w[3] = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_mul_ps(half, t), half), t), t);
    return taps;
}

// composed_pixel for pixels x .. x + 7 of row y (all inside the rect), into out[8][3]; false, touching
// nothing, where a tap would read the portrait's last pixel (a 4-byte gather there would pass its end).
// The portrait is packed RGB (stride_x 3, stride_c 1). Where the feather is 0 the layers' terms are
// exact no-ops (q + 0 * shift = q, w = (1 - attention) * 0 = 0, keep * photo + 0 * colour = photo), so
// every lane takes the same sequence; the layers are sampled only when some lane needs them. Where no
// lane moved either (the background the head motion leaves alone inside its box), each lane's cubic
// weighs its own photo pixel by exactly 1, so the 8 pixels are the photo's, copied.
__attribute__((target("avx2"))) bool compose8(
    const PostprocessItem& item, const float* feather, int size, int x, int y, unsigned char out[8][3]) {
    bool unmoved;
    Lanes q = moved8(item, x, y, unmoved);
    const float inverse = div_rn((float)size, item.box.size);
    const PlaneTaps8 grid =
        plane_taps8(size, to_grid8(q.x, item.box.x0, inverse), to_grid8(q.y, item.box.y0, inverse));
    const __m256 alpha = sample8(feather, grid);
    const bool layered = _mm256_movemask_ps(_mm256_cmp_ps(alpha, _mm256_setzero_ps(), _CMP_NEQ_UQ)) != 0;
    if (unmoved && !layered) {
        memcpy(out, item.portrait.data + y * item.portrait.stride_y + 3 * x, 8 * 3);
        return true;
    }
    __m256 w = _mm256_setzero_ps();
    if (layered) {
        const __m256 attention = sample8(item.mask, grid);
        if (item.shift) {
            q.x = _mm256_add_ps(q.x, _mm256_mul_ps(alpha, sample8(item.shift, grid)));
            q.y = _mm256_add_ps(q.y, _mm256_mul_ps(alpha, sample8(item.shift + size * size, grid)));
        }
        w = _mm256_mul_ps(_mm256_sub_ps(_mm256_set1_ps(1.0f), attention), alpha);
    }
    const ImageU8& photo = item.portrait;
    const CubicTaps8 cols = cubic_taps8(_mm256_sub_ps(q.x, _mm256_set1_ps(0.5f)), photo.width, 3);
    const CubicTaps8 rows = cubic_taps8(_mm256_sub_ps(q.y, _mm256_set1_ps(0.5f)), photo.height, (int)photo.stride_y);
    const int last = (int)((photo.height - 1) * photo.stride_y + (photo.width - 1) * 3);
    const __m256i end = _mm256_add_epi32(rows.offset[3], cols.offset[3]);  // the largest offset of each lane
    if (_mm256_movemask_epi8(_mm256_cmpeq_epi32(end, _mm256_set1_epi32(last))) != 0) return false;
    const __m256i byte = _mm256_set1_epi32(0xff);
    __m256 sum[3];
    for (int r = 0; r < 4; ++r) {
        __m256i taps[4];
        for (int k = 0; k < 4; ++k)
            taps[k] = _mm256_i32gather_epi32((const int*)photo.data, _mm256_add_epi32(rows.offset[r], cols.offset[k]), 1);
        for (int c = 0; c < 3; ++c) {
            __m256 h = _mm256_setzero_ps();
            for (int k = 0; k < 4; ++k) {
                const __m256 value = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(taps[k], 8 * c), byte));
                const __m256 term = _mm256_mul_ps(cols.w[k], value);
                h = k == 0 ? term : _mm256_add_ps(h, term);
            }
            const __m256 weighted = _mm256_mul_ps(h, rows.w[r]);
            sum[c] = r == 0 ? weighted : _mm256_add_ps(sum[c], weighted);
        }
    }
    const __m256 keep = _mm256_sub_ps(_mm256_set1_ps(1.0f), w);
    for (int c = 0; c < 3; ++c) {
        __m256 value = sum[c];
        if (layered) {
            const __m256 colour = _mm256_mul_ps(
                _mm256_add_ps(sample8(item.color + c * size * size, grid), _mm256_set1_ps(1.0f)), _mm256_set1_ps(127.5f));
            value = _mm256_add_ps(_mm256_mul_ps(keep, value), _mm256_mul_ps(w, colour));
        }
        const __m256 rounded = _mm256_round_ps(value, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        alignas(32) int values[8];
        _mm256_store_si256((__m256i*)values, _mm256_cvttps_epi32(clamp8(rounded, 0.0f, 255.0f)));
        for (int lane = 0; lane < 8; ++lane) out[lane][c] = (unsigned char)values[lane];
    }
    return true;
}

// host_postprocess for one item whose portrait and output frame are packed RGB: the rect's pixels
// into item.rgb (8 at a time, compose8), then the I420 of the blocks around it.
__attribute__((target("avx2"))) void postprocess_packed(const PostprocessItem& item, const float* feather, int size) {
    for (int y = item.y_start; y < item.y_stop; ++y) {
        unsigned char* row = item.rgb.data + y * item.rgb.stride_y;
        int x = item.x_start;
        for (; x + 8 <= item.x_stop; x += 8) {
            unsigned char group[8][3];
            if (compose8(item, feather, size, x, y, group)) {
                memcpy(row + 3 * x, group, sizeof(group));
            } else {
                for (int lane = 0; lane < 8; ++lane) composed_pixel(item, feather, size, x + lane, y, row + 3 * (x + lane));
            }
        }
        for (; x < item.x_stop; ++x) composed_pixel(item, feather, size, x, y, row + 3 * x);
    }
    if (!item.i420.y) return;
    for (int by = first_block(item.y_start); by < stop_block(item.y_stop); ++by)
        for (int bx = first_block(item.x_start); bx < stop_block(item.x_stop); ++bx) {
            unsigned char px[2][2][3];
            for (int dy = 0; dy < 2; ++dy)
                for (int dx = 0; dx < 2; ++dx) {
                    const int x = 2 * bx + dx;
                    const int y = 2 * by + dy;
                    const bool inside = y >= item.y_start && y < item.y_stop && x >= item.x_start && x < item.x_stop;
                    const ImageU8& source = inside ? item.rgb : item.portrait;
                    memcpy(px[dy][dx], source.data + y * source.stride_y + 3 * x, 3);
                }
            store_i420_block(item.i420, bx, by, px);
        }
}

// Whether an image is packed RGB: 3 bytes a pixel, 1 a channel, rows forward and wide enough.
bool packed_rgb(const ImageU8& image) {
    return image.data && image.stride_c == 1 && image.stride_x == 3 && image.stride_y >= 3LL * image.width &&
           (long long)image.height * image.stride_y < (1LL << 31);
}

}  // namespace
#endif

extern "C" {

void host_preprocess_f32(const PreprocessItem* items, int count, int size, float* out) {
    for (int b = 0; b < count; ++b)
        for (int v = 0; v < size; ++v)
            for (int u = 0; u < size; ++u) {
                float rgb[3];
                crop_pixel(items[b], size, u, v, rgb);
                for (int c = 0; c < 3; ++c) out[crop_index(b, c, v, u, size)] = rgb[c];
            }
}

void host_preprocess_f16(const PreprocessItem* items, int count, int size, unsigned short* out) {
    for (int b = 0; b < count; ++b)
        for (int v = 0; v < size; ++v)
            for (int u = 0; u < size; ++u) {
                float rgb[3];
                crop_pixel(items[b], size, u, v, rgb);
                for (int c = 0; c < 3; ++c) out[crop_index(b, c, v, u, size)] = f32_to_f16_bits(rgb[c]);
            }
}

void host_postprocess(const PostprocessItem* items, int count, const float* feather, int size) {
#if HOST_OPS_AVX2
    const bool avx2 = __builtin_cpu_supports("avx2");
#endif
    for (int b = 0; b < count; ++b) {
        const PostprocessItem& item = items[b];
#if HOST_OPS_AVX2
        // Odd frames (a pixel row or column without a block) keep the per-block path.
        if (avx2 && packed_rgb(item.portrait) && packed_rgb(item.rgb) && item.portrait.height % 2 == 0 &&
            item.portrait.width % 2 == 0) {
            postprocess_packed(item, feather, size);
            continue;
        }
#endif
        for (int by = first_block(item.y_start); by < stop_block(item.y_stop); ++by)
            for (int bx = first_block(item.x_start); bx < stop_block(item.x_stop); ++bx)
                postprocess_block(item, feather, size, bx, by);
    }
}

void host_rgb_to_i420(const I420Item* items, int count) {
    for (int b = 0; b < count; ++b)
        for (int by = 0; by < items[b].rgb.height / 2; ++by)
            for (int bx = 0; bx < items[b].rgb.width / 2; ++bx) i420_frame_block(items[b], bx, by);
}

void host_f32_to_f16_bits(const float* values, long long count, unsigned short* out) {
    for (long long i = 0; i < count; ++i) out[i] = f32_to_f16_bits(values[i]);
}

// Struct layouts as this compiler lays them out, for the test that holds
// kernels/items.py's numpy dtypes to them: byte offset of type.field, or
// sizeof(type) for field "", or -1 if unknown.
struct Field {
    const char* type;
    const char* field;
    long long offset;
};

#define SIZE(T) {#T, "", (long long)sizeof(T)}
#define FIELD(T, f) {#T, #f, (long long)offsetof(T, f)}

static const Field kFields[] = {
    SIZE(ImageU8), FIELD(ImageU8, data), FIELD(ImageU8, stride_y), FIELD(ImageU8, stride_x),
    FIELD(ImageU8, stride_c), FIELD(ImageU8, height), FIELD(ImageU8, width),
    SIZE(I420Planes), FIELD(I420Planes, y), FIELD(I420Planes, u), FIELD(I420Planes, v),
    FIELD(I420Planes, y_pitch), FIELD(I420Planes, uv_pitch),
    SIZE(Box), FIELD(Box, x0), FIELD(Box, y0), FIELD(Box, size),
    SIZE(PreprocessItem), FIELD(PreprocessItem, portrait), FIELD(PreprocessItem, box),
    SIZE(PostprocessItem), FIELD(PostprocessItem, portrait), FIELD(PostprocessItem, rgb),
    FIELD(PostprocessItem, i420), FIELD(PostprocessItem, color), FIELD(PostprocessItem, mask),
    FIELD(PostprocessItem, shift), FIELD(PostprocessItem, motion_weight), FIELD(PostprocessItem, box),
    FIELD(PostprocessItem, motion_box), FIELD(PostprocessItem, motion_matrix), FIELD(PostprocessItem, motion_size),
    FIELD(PostprocessItem, y_start), FIELD(PostprocessItem, y_stop), FIELD(PostprocessItem, x_start),
    FIELD(PostprocessItem, x_stop),
    SIZE(I420Item), FIELD(I420Item, rgb), FIELD(I420Item, i420),
};

long long host_layout(const char* type, const char* field) {
    for (const Field& entry : kFields)
        if (strcmp(entry.type, type) == 0 && strcmp(entry.field, field) == 0) return entry.offset;
    return -1;
}

}  // extern "C"
