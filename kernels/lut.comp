#version 450
// Scheduled kernel `lut` (out = table[0][in + 128] for i8, table[0][in] for u8; docs/PROTOCOL.md
// section 5): one output word (four elements) per invocation over a 2D grid, the table's
// LOWER_WORDS lowering. In place (in is out) reads through the output view; padding bytes of a
// partial last pixel keep their values.
#extension GL_GOOGLE_include_directive : require

#include "pxvm_kernel.glsl"

layout(local_size_x = KERNEL_LOCAL_SIZE) in;

void main() {
    if (run_stopped()) return;
    const Tensor o = push.t[0], src = push.t[1], table = push.t[2];
    const uint words = pixel_width(o),
               e = flat_group() * KERNEL_LOCAL_SIZE + gl_LocalInvocationIndex;
    if (e >= o.rows * words) return;
    const uint r = e / words, p = e % words, index = row_word(o, push.width, r) + p;
    const uint elements = min(4u, o.cols - 4u * p);
    const uint old = image_out.words[index];
    const uint in_word =
        same_region(o, src) ? old : image_in.words[row_word(src, push.width, r) + p];
    const uint offset = src.dtype == DTYPE_I8 ? 128u : 0u, first = row_word(table, push.width, 0u);
    uint word = old;
    [[unroll]] for (uint j = 0u; j < 4u; ++j) if (j < elements) {
        const uint i = uint(extract_element(in_word, src.dtype, j) + int(offset));
        word = insert_element(word, o.dtype, j,
                              extract_element(image_in.words[first + i / 4u], table.dtype, i % 4u));
    }
    image_out.words[index] = word;
}
