#version 450
// Scheduled kernel `relu` (out = max(in, 0), any dtype, in place allowed): one invocation per four
// consecutive output words of a row (out.rows x ceil(pixel_width(out) / 4) of them). Both tensors
// have one dtype and rows start on pixels, so output word (r, p) is input word (r, p) with its
// negative elements zeroed: nothing for u8 and u16, whole bytes for i8 (found from their sign
// bits), the word for i32. Where the four words of both rows are 16-byte aligned and all
// elements, they move as one 128-bit load and store; otherwise word by word, and the bytes of a
// word that are not elements (padding of a partial last pixel) keep their values.
#extension GL_GOOGLE_include_directive : require

#define PX_IMAGE_IN_VEC4
#define PX_IMAGE_OUT_VEC4
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
    const uint words = pixel_width(o), vecs = (words + 3u) / 4u;
    const uint e = flat_group() * KERNEL_LOCAL_SIZE + gl_LocalInvocationIndex;
    if (e >= o.rows * vecs) return;
    const uint r = e / vecs, p = 4u * (e % vecs);
    const uint out_first = row_word(o, push.width, r), in_first = row_word(i, push.width, r);
    // In place, the input word is the output word: read it through the output view.
    const bool in_place = same_region(o, i);
    const uint size = dtype_size(o.dtype), n = per_word(o);
    const uint whole = o.cols / n; // words that are all elements
    if (((out_first + p) & 3u) == 0u && ((in_first + p) & 3u) == 0u && p + 4u <= whole) {
        const uvec4 v =
            in_place ? image_out.vecs[(out_first + p) >> 2] : image_in.vecs[(in_first + p) >> 2];
        image_out.vecs[(out_first + p) >> 2] =
            uvec4(relu_word(v.x, o.dtype), relu_word(v.y, o.dtype), relu_word(v.z, o.dtype),
                  relu_word(v.w, o.dtype));
        return;
    }
    for (uint w = p; w < min(p + 4u, words); ++w) {
        const uint elements = min(n, o.cols - w * n); // elements in this word
        const uint old = in_place || elements < n ? PX_OUT_WORD(out_first + w) : 0u;
        const uint src = in_place ? old : PX_IMAGE_WORD(in_first + w);
        const uint mask = byte_mask(elements * size); // the element bytes
        PX_OUT_WORD(out_first + w) = (relu_word(src, o.dtype) & mask) | (old & ~mask);
    }
}
