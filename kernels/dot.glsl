// The `dot` kernels (out[0][0] = sum of a[r][c] * b[r][c], u8 or i8, wrapping), included by
// dot_portable.comp and dot_intdot.comp (PX_INT_DOT defined). Each workgroup reduces a chunk of
// DOT_ITEMS * KERNEL_LOCAL_SIZE words of a and b (coalesced: consecutive invocations read
// consecutive words) and adds its sum atomically into status.scratch[SCRATCH_DOT_SUM]; addition
// modulo 2^32 is order-independent, so the result is exact. dot_store then writes it out.
#ifndef PXVM_DOT_GLSL
#define PXVM_DOT_GLSL

#include "pxvm_kernel.glsl"
#ifdef PX_INT_DOT
#include "pxvm_intdot.glsl"
#endif

layout(local_size_x = KERNEL_LOCAL_SIZE) in;

const uint THREADS = KERNEL_LOCAL_SIZE;

shared uint s_sum[THREADS];

void main() {
    if (run_stopped_uniform()) return;
    const Tensor a = push.t[1], b = push.t[2];
    const bool is_signed = a.dtype == DTYPE_I8;
    const uint tid = gl_LocalInvocationIndex, words = pixel_width(a), total = a.rows * words;
    const uint base = flat_group() * (DOT_ITEMS * THREADS) + tid;
    uint sum = 0u; // wraps modulo 2^32 as the protocol says
    [[unroll]] for (uint k = 0u; k < DOT_ITEMS; ++k) {
        const uint e = base + k * THREADS;
        if (e < total) {
            const uint r = e / words, p = e % words;
            const uint n = min(4u, a.cols - 4u * p); // elements in this word; the rest is padding
            const uint wa = image_in.words[row_word(a, push.width, r) + p];
            const uint wb = image_in.words[row_word(b, push.width, r) + p];
#ifdef PX_INT_DOT
            const uint mask = byte_mask(n);
            sum += dot4_packed(wa & mask, wb & mask, is_signed);
#else
            sum += dot4(wa, wb, n, is_signed);
#endif
        }
    }
    s_sum[tid] = sum;
    [[unroll]] for (uint stride = THREADS / 2u; stride > 0u; stride /= 2u) {
        barrier();
        if (tid < stride) s_sum[tid] += s_sum[tid + stride];
    }
    if (tid == 0u && s_sum[0] != 0u) atomicAdd(status.scratch[SCRATCH_DOT_SUM], s_sum[0]);
}

#endif
