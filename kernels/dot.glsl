// The `dot` kernels (out[0][0] = sum of a[r][c] * b[r][c], u8 or i8, wrapping), included by
// dot_portable.comp and dot_intdot.comp (PX_INT_DOT defined). Each workgroup reduces DOT_ITEMS *
// KERNEL_LOCAL_SIZE chunks of four consecutive words of a row of a and b (consecutive invocations
// read consecutive chunks): one 128-bit load each where both rows' chunks are 16-byte aligned and
// all elements, else word by word with the padding bytes masked. The workgroup's sum goes
// atomically into status.scratch[SCRATCH_DOT_SUM]; addition modulo 2^32 is order-independent, so
// the result is exact. dot_store then writes it out.
#ifndef PXVM_DOT_GLSL
#define PXVM_DOT_GLSL

#define PX_IMAGE_IN_VEC4
#include "pxvm_kernel.glsl"
#ifdef PX_INT_DOT
#include "pxvm_intdot.glsl"
#endif

layout(local_size_x = KERNEL_LOCAL_SIZE) in;

const uint THREADS = KERNEL_LOCAL_SIZE;

shared uint s_sum[THREADS];

// The products of the first n bytes (1-4) of two words.
uint dot_word(uint wa, uint wb, uint n, bool is_signed) {
#ifdef PX_INT_DOT
    const uint mask = byte_mask(n);
    return dot4_packed(wa & mask, wb & mask, is_signed);
#else
    return dot4(wa, wb, n, is_signed);
#endif
}

void main() {
    if (run_stopped_uniform()) return;
    const Tensor a = push.t[1], b = push.t[2];
    const bool is_signed = a.dtype == DTYPE_I8;
    const uint tid = gl_LocalInvocationIndex, words = pixel_width(a), chunks = (words + 3u) / 4u;
    const uint total = a.rows * chunks, whole = a.cols / 4u; // words that are all elements
    const uint base = flat_group() * (DOT_ITEMS * THREADS) + tid;
    uint sum = 0u; // wraps modulo 2^32 as the protocol says
    [[unroll]] for (uint k = 0u; k < DOT_ITEMS; ++k) {
        const uint e = base + k * THREADS;
        if (e < total) {
            const uint r = e / chunks, p = 4u * (e % chunks);
            const uint fa = row_word(a, push.width, r) + p, fb = row_word(b, push.width, r) + p;
            if (((fa | fb) & 3u) == 0u && p + 4u <= whole) {
                const uvec4 va = image_in.vecs[fa >> 2], vb = image_in.vecs[fb >> 2];
                [[unroll]] for (uint j = 0u; j < 4u; ++j) sum +=
                    dot_word(va[j], vb[j], 4u, is_signed);
            } else {
                for (uint w = p; w < min(p + 4u, words); ++w) // n: elements; the rest is padding
                    sum += dot_word(PX_IMAGE_WORD(fa + w - p), PX_IMAGE_WORD(fb + w - p),
                                    min(4u, a.cols - 4u * w), is_signed);
            }
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
