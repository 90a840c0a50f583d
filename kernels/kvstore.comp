#version 450
// Scheduled kernel `kvstore`, after where_check (docs/PROTOCOL.md section 5): cache[p][b * C + j]
// = rows[r][j] for (b, p) = where[r], one word of rows per invocation over a 2D grid. The pairs
// are distinct and every slot's block starts on a pixel, so no two invocations write one word.
// When the check refused a row, nothing is written and invocation 0 ends the run with TOKEN_RANGE.
#extension GL_GOOGLE_include_directive : require

#include "pxvm_kernel.glsl"

layout(local_size_x = KERNEL_LOCAL_SIZE) in;

void main() {
    if (run_stopped()) return;
    const uint e = flat_group() * KERNEL_LOCAL_SIZE + gl_LocalInvocationIndex;
    if (status.scratch[SCRATCH_WHERE_BAD] != 0u) {
        if (e == 0u) {
            status.run.fault_code = FAULT_TOKEN_RANGE;
            status.run.fault_pc = push.pc;
            status.run.executed = push.step;
            status.run.halted = 0u;
        }
        return;
    }
    const Tensor cache = push.t[0], src = push.t[1], where = push.t[2];
    const uint words = pixel_width(src);
    if (e >= src.rows * words) return;
    const uint r = e / words, p = e % words;
    const uint b = uint(load_element(where, push.width, r, 0u));
    const uint t = uint(load_element(where, push.width, r, 1u));
    image_out.words[row_word(cache, push.width, t) + b * words + p] =
        image_in.words[row_word(src, push.width, r) + p];
}
