#version 450
// Scheduled kernel `gather_mean`, after gather_check: out[0][d] = floor((2 sum[d] + T) / (2 T)),
// sum[d] = the sum of table[tokens[t]][d] over the T = status.scratch[SCRATCH_TOKEN_COUNT] tokens
// before the first id 0, and 0 when T = 0. A workgroup takes WORDS words (4 u8 or i8 columns each)
// of the table's rows, WORDS = specialization constant 0, a power of two up to the workgroup size;
// the KERNEL_LOCAL_SIZE / WORDS invocations of one word split the tokens and a tree in shared
// memory adds their sums (every sum fits 32 bits: at most 65536 8-bit values). Each invocation
// loops over at most T / (KERNEL_LOCAL_SIZE / WORDS) tokens, and reports STATUS_INCOMPLETE if
// lavapipe's loop budget cut that short.
#extension GL_GOOGLE_include_directive : require

#include "pxvm_kernel.glsl"

layout(local_size_x = KERNEL_LOCAL_SIZE) in;
layout(constant_id = 0) const uint WORDS = 32u;

const uint THREADS = KERNEL_LOCAL_SIZE;
const uint LANES = THREADS / WORDS; // invocations per word

shared ivec4 s_sum[THREADS];

void main() {
    if (run_stopped_uniform()) return;
    const Tensor o = push.t[0], table = push.t[1], tokens = push.t[2];
    const uint tid = gl_LocalInvocationIndex, slot = tid % WORDS, lane = tid / WORDS;
    const uint p = gl_WorkGroupID.x * WORDS + slot; // the word of every table row
    const bool busy = p < pixel_width(table);       // every invocation takes part in the barriers
    const uint count = status.scratch[SCRATCH_TOKEN_COUNT];
    ivec4 sum = ivec4(0);
    if (busy)
        for (uint t = lane; t < count; t += LANES) {
            const int id = load_element(tokens, push.width, t / tokens.cols, t % tokens.cols);
            const uint word = image_in.words[row_word(table, push.width, uint(id)) + p];
            sum += unpack_bytes(word, table.dtype == DTYPE_I8); // padding bytes are never stored
        }
    s_sum[tid] = sum;
    for (uint stride = LANES / 2u; stride > 0u; stride /= 2u) {
        barrier();
        if (lane < stride) s_sum[tid] += s_sum[tid + stride * WORDS];
    }
    barrier();
    if (!busy || lane != 0u) return;
    if (loop_budget_exhausted(push.height)) {
        report_incomplete();
        return;
    }
    const int n = int(count);
    const uint first = row_word(o, push.width, 0u);
    [[unroll]] for (uint j = 0u; j < 4u; ++j) {
        const uint d = 4u * p + j;
        if (d < table.cols)
            image_out.words[first + d] = uint(n == 0 ? 0 : floor_div(2 * s_sum[tid][j] + n, 2 * n));
    }
}
