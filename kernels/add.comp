#version 450
// Scheduled kernel `add` (acc = clamp(acc + in), i32, saturating; docs/PROTOCOL.md section 5): one
// element (one word) of acc per invocation over a 2D grid, the table's LOWER_WORDS lowering. In
// place (in is acc) reads through the output view.
#extension GL_GOOGLE_include_directive : require

#include "pxvm_kernel.glsl"

layout(local_size_x = KERNEL_LOCAL_SIZE) in;

void main() {
    if (run_stopped()) return;
    const Tensor acc = push.t[0], src = push.t[1];
    const uint e = flat_group() * KERNEL_LOCAL_SIZE + gl_LocalInvocationIndex;
    if (e >= acc.rows * acc.cols) return;
    const uint r = e / acc.cols, c = e % acc.cols, index = row_word(acc, push.width, r) + c;
    const int a = int(image_out.words[index]);
    const int b = same_region(acc, src) ? a : int(image_in.words[row_word(src, push.width, r) + c]);
    const int sum = a + b; // wraps; saturate where the signs say it overflowed
    const bool overflow = (a >= 0) == (b >= 0) && (sum >= 0) != (a >= 0);
    image_out.words[index] = uint(overflow ? (a >= 0 ? INT_MAX : INT_MIN) : sum);
}
