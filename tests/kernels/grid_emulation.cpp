// The __global__ kernels of kernels/*.cu compiled for the CPU with a serial
// grid: emulate_<kernel>(grid, block, args...) runs the kernel body once per
// (block, thread) of the launch, with blockIdx / threadIdx / blockDim set as
// on the GPU. With fake_cuda_core.py this runs kernels/launch.py end to end on
// the CPU: its grids, its argument order, the kernels' indexing and bounds.
// Built by kernels.host_build.build_host_library (-I kernels/).

struct Dim3 {
    unsigned x, y, z;
};

static Dim3 gridDim, blockDim, blockIdx, threadIdx;

#define __global__

#include "i420.cu"
#include "postprocess.cu"
#include "preprocess.cu"

template <typename Kernel, typename... Args>
static void run_grid(Kernel kernel, Dim3 grid, Dim3 block, Args... args) {
    gridDim = grid;
    blockDim = block;
    for (blockIdx.z = 0; blockIdx.z < grid.z; ++blockIdx.z)
        for (blockIdx.y = 0; blockIdx.y < grid.y; ++blockIdx.y)
            for (blockIdx.x = 0; blockIdx.x < grid.x; ++blockIdx.x)
                for (threadIdx.z = 0; threadIdx.z < block.z; ++threadIdx.z)
                    for (threadIdx.y = 0; threadIdx.y < block.y; ++threadIdx.y)
                        for (threadIdx.x = 0; threadIdx.x < block.x; ++threadIdx.x) kernel(args...);
}

extern "C" {

void emulate_preprocess_f32(Dim3 grid, Dim3 block, const PreprocessItem* items, int size, float* out) {
    run_grid(preprocess_f32, grid, block, items, size, out);
}

void emulate_preprocess_f16(
    Dim3 grid, Dim3 block, const PreprocessItem* items, int size, unsigned short* out) {
    run_grid(preprocess_f16, grid, block, items, size, out);
}

void emulate_postprocess(
    Dim3 grid, Dim3 block, const PostprocessItem* items, const float* feather, int size) {
    run_grid(postprocess, grid, block, items, feather, size);
}

void emulate_rgb_to_i420(Dim3 grid, Dim3 block, const I420Item* items) {
    run_grid(rgb_to_i420, grid, block, items);
}

}  // extern "C"
