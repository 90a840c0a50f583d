#version 450
// Scheduled kernel `relu` (out = max(in, 0), any dtype, in place allowed): one output word per
// invocation over a 2D grid covering out.rows x pixel_width(out) words. Both tensors have one
// dtype and rows start on pixels, so output word (r, p) is input word (r, p) with its negative
// elements zeroed: nothing for u8 and u16, whole bytes for i8 (found from their sign bits), the
// word for i32. Bytes of the word that are not elements (padding of a partial last pixel) keep
// their values.
#extension GL_GOOGLE_include_directive : require

#include "pxvm_kernel.glsl"

layout(local_size_x = KERNEL_LOCAL_SIZE) in;

// The elements of a word of this dtype, each replaced by max(element, 0).
uint relu_word(uint word, uint dtype) {
    if (dtype == DTYPE_I8) return word & ~(((word >> 7) & 0x01010101u) * 255u);
    if (dtype == DTYPE_I32) return uint(max(int(word), 0));
    return word; // unsigned: never negative
}

void main() {
    if (run_stopped()) return;
    const Tensor o = push.t[0], i = push.t[1];
    const uint words = pixel_width(o),
               e = flat_group() * KERNEL_LOCAL_SIZE + gl_LocalInvocationIndex;
    if (e >= o.rows * words) return;
    const uint r = e / words, p = e % words, index = row_word(o, push.width, r) + p;
    const uint size = dtype_size(o.dtype), n = per_word(o);
    const uint elements = min(n, o.cols - p * n); // elements in this word
    // In place, the input word is the output word: read it through the output view.
    const bool in_place = same_region(o, i);
    const uint old = in_place || elements < n ? image_out.words[index] : 0u;
    const uint src = in_place ? old : image_in.words[row_word(i, push.width, r) + p];
    const uint mask = byte_mask(elements * size); // the element bytes
    image_out.words[index] = (relu_word(src, o.dtype) & mask) | (old & ~mask);
}
