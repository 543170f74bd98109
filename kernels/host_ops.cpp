// The kernels' per-pixel functions compiled for the CPU, for the tests: each
// entry point loops over the pixels (or 2x2 blocks) that one kernel launch
// covers and calls the same image_ops.cuh function the kernel's thread calls.
// Built by kernels/host_build.py with -ffp-contract=off; loaded with ctypes.

#include <stddef.h>
#include <string.h>

#include "image_ops.cuh"

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
    for (int b = 0; b < count; ++b) {
        const PostprocessItem& item = items[b];
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
