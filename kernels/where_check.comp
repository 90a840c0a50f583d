#version 450
// Scheduled kernel `where_check`, before kvstore and attend (docs/PROTOCOL.md section 5): one
// invocation per row of `where` over a 2D grid. A row naming a slot or position outside the
// cache, or (kvstore, push.arg[3] = 1) not after the row before it in (slot, position) order,
// records ~r in status.scratch[SCRATCH_WHERE_BAD] (atomicMax keeps the first); the kernel after it
// turns that into the TOKEN_RANGE fault.
#extension GL_GOOGLE_include_directive : require

#include "pxvm_kernel.glsl"
#include "pxvm_transformer.glsl"

layout(local_size_x = KERNEL_LOCAL_SIZE) in;

void main() {
    if (run_stopped()) return;
    const bool kvstore = push.arg[3] == 1u;
    // kvstore: cache, rows, where; attend: out, q, cache, where (keys then values per slot)
    Tensor cache = push.t[2], where = push.t[3];
    uint block = 2u * push.t[1].cols;
    if (kvstore) { // (a conditional expression of Tensor values miscompiles in glslang 12)
        cache = push.t[0];
        where = push.t[2];
        block = push.t[1].cols;
    }
    const uint r = flat_group() * KERNEL_LOCAL_SIZE + gl_LocalInvocationIndex;
    if (r >= where.rows) return;
    if (!where_row_ok(where, push.width, r, cache.cols / block, cache.rows, kvstore))
        atomicMax(status.scratch[SCRATCH_WHERE_BAD], ~r);
}
