// The `matmul` kernels (C = A * B^T: c[m][n] = sum_k a[m][k] * b[n][k], u8 x u8 or i8 x i8 -> i32,
// wrapping), included by matmul_portable.comp and matmul_intdot.comp (PX_INT_DOT defined).
//
// A workgroup of 16 x 16 invocations computes a TILE_M x TILE_N tile of C (specialization
// constants 0 and 1: 16, 32 or 64), each invocation (TILE_M / 16) x (TILE_N / 16) elements, rows
// ty + 16 i and columns tx + 16 j (so the stores of a row are coalesced). K advances in steps of
// K_WORDS (constant 3) = 16 or 32 words: each invocation loads words tx (and tx + 16) of tile rows
// ty + 16 p of A and B (16 invocations read 64 contiguous bytes of a row) into registers one step
// ahead, then into shared memory. Words past the rows of A or B are 0 and the bytes past K in the
// last word of a row are masked to 0 (padding that may hold anything), so any M, N, K and any
// origin pixel are exact. Shared rows are K_WORDS / 4 + 1 uvec4 long: the 128-bit reads of the
// inner loop are then free of bank conflicts. SIGNED (constant 2) selects i8 x i8.
//
// Loops: ceil(K / (4 K_WORDS)) steps per invocation, the inner loops are unrolled; an invocation
// that ran out of lavapipe's loop budget reports STATUS_INCOMPLETE instead of writing C.
#ifndef PXVM_MATMUL_GLSL
#define PXVM_MATMUL_GLSL

#include "pxvm_kernel.glsl"
#ifdef PX_INT_DOT
#include "pxvm_intdot.glsl"
#endif

layout(local_size_x = KERNEL_LOCAL_SIZE) in; // 16 x 16
layout(constant_id = 0) const uint TILE_M = 64u;
layout(constant_id = 1) const uint TILE_N = 64u;
layout(constant_id = 2) const uint SIGNED = 0u;
// Words of K per step, 16 or 32: 32 ran 4-16% faster on an H200; lavapipe compiles the unrolled
// 16-word step in a third of the time at the same speed.
layout(constant_id = 3) const uint K_WORDS = 32u;

const uint TM = TILE_M / 16u, TN = TILE_N / 16u; // elements per invocation, at most 4 x 4
const uint K_LOADS = K_WORDS / 16u; // words of each tile row an invocation loads (1 or 2)
const uint K_VECS = K_WORDS / 4u;
const uint ROW_VECS = K_VECS + 1u; // padded shared rows

shared uvec4 sa[TILE_M * ROW_VECS];
shared uvec4 sb[TILE_N * ROW_VECS];

// The words of A and B this invocation loads for the K step at word k0: words tx + 16 l of tile
// rows ty + 16 p, 0 past the rows and masked past K. Read a step ahead, so that the loads of the
// next step are in flight while the current one computes.
void load_step(Tensor a, Tensor b, uint k0, uint m0, uint n0, uint tx, uint ty, uint kwords,
               uint last_mask, out uint pa[8], out uint pb[8]) {
    [[unroll]] for (uint l = 0u; l < K_LOADS; ++l) {
        const uint k = k0 + tx + 16u * l;
        const uint mask = k + 1u == kwords ? last_mask : (k < kwords ? 0xFFFFFFFFu : 0u);
        const uint kk = min(k, kwords - 1u); // an address inside the row; masked when past it
        [[unroll]] for (uint p = 0u; p < TM; ++p) {
            const uint m = m0 + ty + 16u * p;
            pa[K_LOADS * p + l] =
                m < a.rows ? image_in.words[row_word(a, push.width, m) + kk] & mask : 0u;
        }
        [[unroll]] for (uint p = 0u; p < TN; ++p) {
            const uint n = n0 + ty + 16u * p;
            pb[K_LOADS * p + l] =
                n < b.rows ? image_in.words[row_word(b, push.width, n) + kk] & mask : 0u;
        }
    }
}

void main() {
    if (run_stopped_uniform()) return;
    const Tensor c = push.t[0], a = push.t[1], b = push.t[2];
    const uint width = push.width, tid = gl_LocalInvocationIndex, tx = tid % 16u, ty = tid / 16u;
    const uint m0 = gl_WorkGroupID.y * TILE_M, n0 = gl_WorkGroupID.x * TILE_N;
    const uint M = a.rows, N = b.rows, kwords = pixel_width(a);
    const uint last_mask = byte_mask(a.cols - 4u * (kwords - 1u));
    const bool is_signed = SIGNED != 0u;

    uint acc[16]; // acc[4 i + j]; only i < TM, j < TN are used
    [[unroll]] for (uint e = 0u; e < 16u; ++e) acc[e] =
        0u; // sums wrap modulo 2^32 as the protocol says

    uint pa[8], pb[8]; // [K_LOADS p + l]; only p < TM (TN), l < K_LOADS are used
    load_step(a, b, 0u, m0, n0, tx, ty, kwords, last_mask, pa, pb);
    for (uint k0 = 0u; k0 < kwords; k0 += K_WORDS) {
        [[unroll]] for (uint l = 0u; l < K_LOADS; ++l) {
            const uint kw = tx + 16u * l;
            [[unroll]] for (uint p = 0u; p < TM; ++p)
                sa[(ty + 16u * p) * ROW_VECS + kw / 4u][kw % 4u] = pa[K_LOADS * p + l];
            [[unroll]] for (uint p = 0u; p < TN; ++p)
                sb[(ty + 16u * p) * ROW_VECS + kw / 4u][kw % 4u] = pb[K_LOADS * p + l];
        }
        barrier();
        if (k0 + K_WORDS < kwords)
            load_step(a, b, k0 + K_WORDS, m0, n0, tx, ty, kwords, last_mask, pa, pb);
        [[unroll]] for (uint q = 0u; q < K_VECS; ++q) {
            uvec4 av[4], bv[4];
            [[unroll]] for (uint i = 0u; i < TM; ++i) av[i] = sa[(ty + 16u * i) * ROW_VECS + q];
            [[unroll]] for (uint j = 0u; j < TN; ++j) bv[j] = sb[(tx + 16u * j) * ROW_VECS + q];
            [[unroll]] for (uint w = 0u; w < 4u; ++w) {
#ifdef PX_INT_DOT
                [[unroll]] for (uint i = 0u; i < TM; ++i) [[unroll]] for (uint j = 0u; j < TN; ++j)
                    acc[4u * i + j] += dot4_packed(av[i][w], bv[j][w], is_signed);
#else
                // Each word is unpacked once and meets TN (TM) words of the other operand.
                ivec4 ua[4], ub[4];
                [[unroll]] for (uint i = 0u; i < TM; ++i) ua[i] = unpack_bytes(av[i][w], is_signed);
                [[unroll]] for (uint j = 0u; j < TN; ++j) ub[j] = unpack_bytes(bv[j][w], is_signed);
                [[unroll]] for (uint i = 0u; i < TM; ++i)
                    [[unroll]] for (uint j = 0u; j < TN; ++j) {
                    const ivec4 x = ua[i], y = ub[j];
                    acc[4u * i + j] += uint(x.x * y.x + x.y * y.y + x.z * y.z + x.w * y.w);
                }
#endif
            }
        }
        barrier();
    }
    if (loop_budget_exhausted(push.height)) {
        report_incomplete();
        return;
    }
    [[unroll]] for (uint i = 0u; i < TM; ++i) {
        const uint m = m0 + ty + 16u * i;
        if (m < M) {
            const uint first = row_word(c, width, m);
            [[unroll]] for (uint j = 0u; j < TN; ++j) {
                const uint n = n0 + tx + 16u * j;
                if (n < N) image_out.words[first + n] = acc[4u * i + j];
            }
        }
    }
}

#endif
