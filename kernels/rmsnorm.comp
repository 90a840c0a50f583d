#version 450
// Scheduled kernel `rmsnorm` (docs/PROTOCOL.md section 5): one output word (four i8 elements) per
// invocation over a 2D grid. Each invocation sums the squares of its whole input row in 64 bits
// (the row is read by every invocation of the row, from cache), takes the square root, and writes
// its four outputs (rmsnorm_value in pxvm_arith.glsl); push.arg[0] is the shift. Padding bytes of
// a partial last pixel keep their values.
#extension GL_GOOGLE_include_directive : require

#include "pxvm_kernel.glsl"

layout(local_size_x = KERNEL_LOCAL_SIZE) in;

void main() {
    if (run_stopped()) return;
    const Tensor o = push.t[0], src = push.t[1], gain = push.t[2];
    const uint words = pixel_width(o),
               e = flat_group() * KERNEL_LOCAL_SIZE + gl_LocalInvocationIndex;
    if (e >= o.rows * words) return;
    const uint r = e / words, p = e % words, index = row_word(o, push.width, r) + p;
    const int limit = int(RMSNORM_LIMIT);
    const uint first = row_word(src, push.width, r);
    uint hi = 0u, lo = 0u;
    for (uint c = 0u; c < src.cols; ++c) {
        const uint x = uint(abs(clamp(int(image_in.words[first + c]), -limit, limit)));
        uint shi, slo, carry;
        umulExtended(x, x, shi, slo);
        lo = uaddCarry(lo, slo, carry);
        hi += shi + carry;
    }
    if (loop_budget_exhausted(push.height)) {
        report_incomplete();
        return;
    }
    const uint root = max(isqrt64(hi, lo), 1u);
    const uint elements = min(4u, o.cols - 4u * p);
    uint word = elements < 4u ? image_out.words[index] : 0u;
    [[unroll]] for (uint j = 0u; j < 4u; ++j) if (j < elements) {
        const uint c = 4u * p + j;
        const int x = clamp(int(image_in.words[first + c]), -limit, limit);
        const int g = int(image_in.words[row_word(gain, push.width, 0u) + c]);
        word = insert_element(word, DTYPE_I8, j, rmsnorm_value(x, g, push.arg[0], root));
    }
    image_out.words[index] = word;
}
