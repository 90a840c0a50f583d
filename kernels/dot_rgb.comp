#version 450
// Scheduled kernel `dot_rgb` (the seed's instruction, docs/PROTOCOL.md section 5), one workgroup:
// n = the first x where rows A and B both hold R = 0 (else W), then
// pixel (0, rowOut) = (dot & 255, dot >> 8, 0, 0) with dot = sum of A.R * B.R over x < n, modulo
// 2^16. push.arg = rows A, B, out. W <= 32768, so every invocation loops at most 256 times.
#extension GL_GOOGLE_include_directive : require

#include "pxvm_kernel.glsl"

layout(local_size_x = KERNEL_LOCAL_SIZE) in;

const uint THREADS = KERNEL_LOCAL_SIZE;

shared uint s_first;
shared uint s_sum[THREADS];

void main() {
    const uint tid = gl_LocalInvocationIndex;
    if (tid == 0u) s_first = NONE;
    if (run_stopped_uniform()) return;
    const uint w = push.width, row_a = push.arg[0] * w, row_b = push.arg[1] * w;
    for (uint x = tid; x < w; x += THREADS)
        if (((image_in.words[row_a + x] | image_in.words[row_b + x]) & 255u) == 0u)
            atomicMin(s_first, x);
    barrier();
    const uint n = min(s_first, w);
    uint sum = 0u;
    for (uint x = tid; x < n; x += THREADS)
        sum += (image_in.words[row_a + x] & 255u) * (image_in.words[row_b + x] & 255u);
    s_sum[tid] = sum;
    [[unroll]] for (uint stride = THREADS / 2u; stride > 0u; stride /= 2u) {
        barrier();
        if (tid < stride) s_sum[tid] += s_sum[tid + stride];
    }
    // Every read is done before this write, so rowOut may be row A or B.
    if (tid == 0u) image_out.words[push.arg[2] * w] = s_sum[0] & 0xFFFFu;
}
