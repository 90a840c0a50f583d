#version 450
// Scheduled kernel `requant` (docs/PROTOCOL.md section 5): out = clamp(((in * multiplier +
// 2^(shift-1)) >> shift) + zero_point) for i32 in and u8, i8 or i32 out; push.arg = multiplier,
// shift, zero point (as i32). One output word (1, 2 or 4 elements) per invocation over a 2D grid;
// padding bytes of a partial last pixel keep their values. In place (i32 only) reads through the
// output view.
#extension GL_GOOGLE_include_directive : require

#include "pxvm_kernel.glsl"

layout(local_size_x = KERNEL_LOCAL_SIZE) in;

void main() {
    if (run_stopped()) return;
    const Tensor o = push.t[0], i = push.t[1];
    const uint words = pixel_width(o),
               e = flat_group() * KERNEL_LOCAL_SIZE + gl_LocalInvocationIndex;
    if (e >= o.rows * words) return;
    const uint r = e / words, p = e % words, index = row_word(o, push.width, r) + p;
    const uint n = per_word(o), elements = min(n, o.cols - p * n);
    const int multiplier = int(push.arg[0]), zero_point = int(push.arg[2]);
    const uint shift = push.arg[1];
    const bool in_place = same_region(o, i); // then both are i32: one element per word
    const uint old = in_place || elements < n ? image_out.words[index] : 0u;
    const uint first =
        row_word(i, push.width, r) + p * n; // the i32 input of element j is first + j
    uint word = old;
    [[unroll]] for (uint j = 0u; j < 4u; ++j) if (j < elements) {
        const int v = int(in_place ? old : image_in.words[first + j]);
        word = insert_element(word, o.dtype, j,
                              requant_value(v, multiplier, shift, zero_point, o.dtype));
    }
    image_out.words[index] = word;
}
