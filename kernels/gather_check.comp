#version 450
// Scheduled kernel `gather_check`, one workgroup, before gather_mean (docs/PROTOCOL.md section
// 5): scans the token ids (at most 65536, so at most 256 per invocation) for T, the index of the
// first id 0 (or every element), and the first id out of range (< 0 or >= table.rows). An id out
// of range before T is the TOKEN_RANGE fault, which ends the run here: status = (TOKEN_RANGE, pc,
// the steps executed before it, not halted). Otherwise T goes to
// status.scratch[SCRATCH_TOKEN_COUNT].
#extension GL_GOOGLE_include_directive : require

#include "pxvm_kernel.glsl"

layout(local_size_x = KERNEL_LOCAL_SIZE) in;

const uint THREADS = KERNEL_LOCAL_SIZE;

shared uint s_first_zero, s_first_bad;

void main() {
    const uint tid = gl_LocalInvocationIndex;
    if (tid == 0u) {
        s_first_zero = NONE;
        s_first_bad = NONE;
    }
    if (run_stopped_uniform()) return;
    const Tensor table = push.t[1], tokens = push.t[2];
    const uint total = tokens.rows * tokens.cols;
    for (uint t = tid; t < total; t += THREADS) {
        const int id = load_element(tokens, push.width, t / tokens.cols, t % tokens.cols);
        if (id == 0)
            atomicMin(s_first_zero, t);
        else if (id < 0 || uint(id) >= table.rows)
            atomicMin(s_first_bad, t);
    }
    barrier();
    if (tid != 0u) return;
    if (s_first_bad < s_first_zero) {
        status.run.fault_code = FAULT_TOKEN_RANGE;
        status.run.fault_pc = push.pc;
        status.run.executed = push.step;
        status.run.halted = 0u;
    } else {
        status.scratch[SCRATCH_TOKEN_COUNT] = min(s_first_zero, total);
    }
}
