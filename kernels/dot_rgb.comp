#version 450
// Scheduled kernel `dot_rgb` (the seed's instruction, docs/PROTOCOL.md section 5) for a batch of
// consecutive instructions, one workgroup each: workgroup g runs the instruction at pc
// push.arg[0] + g of push.arg[1] (read from row 0, which no run changes but for the fault pixel:
// the rows of an instruction at pc W - 1 come in push.arg[2]). n = the first x where rows
// A and B both hold R = 0 (else W), then pixel (0, rowOut) = (dot & 255, dot >> 8, 0, 0) with
// dot = sum of A.R * B.R over x < n, modulo 2^16. The scheduler batches only instructions that
// read no row another one writes (dot_rgb_batch); of several writing one row, only the last
// writes. W <= 32768, so every invocation loops at most 128 + 128 + 256 times.
#extension GL_GOOGLE_include_directive : require

#include "pxvm_kernel.glsl"

layout(local_size_x = KERNEL_LOCAL_SIZE) in;

const uint THREADS = KERNEL_LOCAL_SIZE;

shared uint s_first;
shared uint s_overwritten;
shared uint s_sum[THREADS];

// The batch's instruction at pc. The one at pc W - 1 comes from the host (push.arg[2], bit 24
// set): its pixel is also the fault pixel, which an earlier run of the same recording may have
// written.
uint instruction_at(uint pc) {
    if (pc == push.width - 1u && (push.arg[2] & (1u << 24)) != 0u)
        return OP_DOT_RGB | (push.arg[2] & 0xFFFFFFu) << 8;
    return image_in.words[pc];
}

void main() {
    const uint tid = gl_LocalInvocationIndex;
    if (tid == 0u) {
        s_first = NONE;
        s_overwritten = 0u;
    }
    if (run_stopped_uniform()) return;
    const uint pc = push.arg[0] + gl_WorkGroupID.x, end = push.arg[0] + push.arg[1];
    const uint ins = instruction_at(pc);
    const uint w = push.width, row_a = channel(ins, 1u) * w, row_b = channel(ins, 2u) * w,
               row_out = channel(ins, 3u);
    // A later instruction of the batch writing the same pixel makes this write dead.
    for (uint later = pc + 1u + tid; later < end; later += THREADS)
        if (channel(instruction_at(later), 3u) == row_out) s_overwritten = 1u;
    for (uint x = tid; x < w; x += THREADS)
        if (((image_in.words[row_a + x] | image_in.words[row_b + x]) & 255u) == 0u)
            atomicMin(s_first, x);
    barrier();
    const uint n = min(s_first, w);
    uint sum = 0u;
    for (uint x = tid; x < n; x += THREADS)
        sum += (image_in.words[row_a + x] & 255u) * (image_in.words[row_b + x] & 255u);
    s_sum[tid] = sum;
    [[unroll]] for (uint stride = THREADS / 2u; stride > 0u; stride /= 2u) {
        barrier();
        if (tid < stride) s_sum[tid] += s_sum[tid + stride];
    }
    // Every read is done before this write, so rowOut may be row A or B.
    if (tid == 0u && s_overwritten == 0u) image_out.words[row_out * w] = s_sum[0] & 0xFFFFu;
}
