#version 450
// Scheduled kernel `dot_store`, one invocation after dot_portable or dot_intdot: writes the sum the
// workgroups accumulated in status.scratch[SCRATCH_DOT_SUM] to out[0][0] (i32) and clears it for
// the next dot of the program.
#extension GL_GOOGLE_include_directive : require

#include "pxvm_kernel.glsl"

layout(local_size_x = 1) in;

void main() {
    if (run_stopped()) return;
    image_out.words[row_word(push.t[0], push.width, 0u)] = status.scratch[SCRATCH_DOT_SUM];
    status.scratch[SCRATCH_DOT_SUM] = 0u;
}
