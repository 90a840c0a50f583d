#version 450
// Scheduled kernel `attend`, after where_check (docs/PROTOCOL.md section 5): one output word per
// invocation over a 2D grid, computed by attend_word (pxvm_transformer.glsl): the scores of the
// word's head against the row's cached keys 0 ... p, their table exponentials and the weighted sum
// of the values, rounded once. push.arg = heads, score multiplier, score shift. When the check
// refused a row, nothing is written and invocation 0 ends the run with TOKEN_RANGE.
#extension GL_GOOGLE_include_directive : require

#include "pxvm_kernel.glsl"
#include "pxvm_transformer.glsl"

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
    const Tensor o = push.t[0], q = push.t[1], cache = push.t[2], where = push.t[3];
    const uint words = pixel_width(o);
    if (e >= o.rows * words) return;
    const uint r = e / words, p = e % words, index = row_word(o, push.width, r) + p;
    const uint b = uint(load_element(where, push.width, r, 0u));
    const uint t = uint(load_element(where, push.width, r, 1u));
    const uint word = attend_word(q, cache, push.width, r, b, t, p, push.arg[0], push.arg[1],
                                  push.arg[2], image_out.words[index]);
    if (loop_budget_exhausted(push.height)) {
        report_incomplete();
        return;
    }
    image_out.words[index] = word;
}
