#version 450
// Scheduled kernel `embed_check`, before embed (docs/PROTOCOL.md section 5): one invocation per
// token id over a 2D grid. An id < 0 or >= table.rows records ~t for its index t in
// status.scratch[SCRATCH_EMBED_BAD] (atomicMax keeps the first); embed turns that into the
// TOKEN_RANGE fault. No barriers: the embed dispatch after it sees every write.
#extension GL_GOOGLE_include_directive : require

#include "pxvm_kernel.glsl"

layout(local_size_x = KERNEL_LOCAL_SIZE) in;

void main() {
    if (run_stopped()) return;
    const Tensor table = push.t[1], tokens = push.t[2];
    const uint t = flat_group() * KERNEL_LOCAL_SIZE + gl_LocalInvocationIndex;
    if (t >= tokens.rows * tokens.cols) return;
    const int id = load_element(tokens, push.width, t / tokens.cols, t % tokens.cols);
    if (id < 0 || uint(id) >= table.rows) atomicMax(status.scratch[SCRATCH_EMBED_BAD], ~t);
}
