#version 450
// Scheduled kernel `add_bias` (acc[r][c] += bias[0][c], i32, wrapping): one element (one word) of
// acc per invocation over a 2D grid covering acc.rows x acc.cols.
#extension GL_GOOGLE_include_directive : require

#include "pxvm_kernel.glsl"

layout(local_size_x = KERNEL_LOCAL_SIZE) in;

void main() {
    if (run_stopped()) return;
    const Tensor acc = push.t[0], bias = push.t[1];
    const uint e = flat_group() * KERNEL_LOCAL_SIZE + gl_LocalInvocationIndex;
    if (e >= acc.rows * acc.cols) return;
    const uint r = e / acc.cols, c = e % acc.cols, index = row_word(acc, push.width, r) + c;
    image_out.words[index] += image_in.words[row_word(bias, push.width, 0u) + c];
}
