#version 450
// Benchmark kernel `copy_peak` (not an instruction; pxbench's bandwidth ceiling): copies
// push.arg[2] 16-byte vectors of the image from word push.arg[0] to word push.arg[1] (both
// multiples of 4), VECS (specialization constant 0) a invocation, the workgroup's loads of one
// round contiguous. The memory-bound kernels' figures are percentages of its best.
#extension GL_GOOGLE_include_directive : require

#define PX_IMAGE_IN_VEC4
#define PX_IMAGE_OUT_VEC4
#include "pxvm_kernel.glsl"

layout(local_size_x = KERNEL_LOCAL_SIZE) in;
layout(constant_id = 0) const uint VECS = 1u;

void main() {
    if (run_stopped()) return;
    const uint src = push.arg[0] >> 2, dst = push.arg[1] >> 2, count = push.arg[2];
    const uint first = flat_group() * (VECS * KERNEL_LOCAL_SIZE) + gl_LocalInvocationIndex;
    uvec4 v[VECS];
    [[unroll]] for (uint q = 0u; q < VECS; ++q) {
        const uint e = first + q * KERNEL_LOCAL_SIZE;
        if (e < count) v[q] = image_in.vecs[src + e];
    }
    [[unroll]] for (uint q = 0u; q < VECS; ++q) {
        const uint e = first + q * KERNEL_LOCAL_SIZE;
        if (e < count) image_out.vecs[dst + e] = v[q];
    }
}
