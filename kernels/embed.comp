#version 450
// Scheduled kernel `embed`, after embed_check: out[b][j * E + d] = table[tokens[b][j]][d], one
// output word per invocation over a 2D grid covering out.rows x pixel_width(out) words. When the
// check found an id out of range, nothing is written and invocation 0 ends the run with the
// TOKEN_RANGE fault: status = (TOKEN_RANGE, pc, the steps executed before it, not halted). Any
// dtype (out and table share it); bytes of a partial last word that are not elements keep their
// values.
#extension GL_GOOGLE_include_directive : require

#include "pxvm_kernel.glsl"

layout(local_size_x = KERNEL_LOCAL_SIZE) in;

void main() {
    if (run_stopped()) return;
    const uint e = flat_group() * KERNEL_LOCAL_SIZE + gl_LocalInvocationIndex;
    if (status.scratch[SCRATCH_EMBED_BAD] != 0u) {
        if (e == 0u) {
            status.run.fault_code = FAULT_TOKEN_RANGE;
            status.run.fault_pc = push.pc;
            status.run.executed = push.step;
            status.run.halted = 0u;
        }
        return;
    }
    const Tensor o = push.t[0], table = push.t[1], tokens = push.t[2];
    const uint words = pixel_width(o);
    if (e >= o.rows * words) return;
    const uint r = e / words, p = e % words, index = row_word(o, push.width, r) + p;
    const uint n = per_word(o), elements = min(n, o.cols - n * p);
    uint word = elements < n ? image_out.words[index] : 0u;
    for (uint j = 0u; j < elements; ++j) {
        const uint c = n * p + j;
        const uint id = uint(load_element(tokens, push.width, r, c / table.cols));
        word =
            insert_element(word, o.dtype, j, load_element(table, push.width, id, c % table.cols));
    }
    image_out.words[index] = word;
}
