// The tensor-core `matmul` kernels (C = A * B^T: c[m][n] = sum_k a[m][k] * b[n][k], wrapping
// modulo 2^32), included by matmul_coopmat_nv_s8.comp (PX_SIGNED: i8 x i8 -> i32) and
// matmul_coopmat_nv_u8.comp (u8 x u8 -> u32, the same bits): NV cooperative matrices, which
// Debian 12's glslang compiles (the KHR extension it does not).
//
// A workgroup of 8 subgroups of 32 computes a TILE_M x TILE_N tile of C; the subgroups form a
// SUBGROUPS_M x (8 / SUBGROUPS_M) grid, each owning C_ROWS x C_COLS accumulators of LM x LN. The
// matrix shape LM x LN x LK is one the device reports (the scheduler picks it). K advances
// TILE_K bytes a step: every invocation loads its share of the A and B tile rows one step ahead
// into registers, 128 bits at a time where the rows are 16-byte aligned (else word by word), then
// into shared memory, whose rows are padded by 16 bytes so that the matrix loads are free of bank
// conflicts. With STAGES = 2 the step being computed and the next one are in two halves of shared
// memory (one barrier a step); with 1, the next step waits for the current one (two barriers). Rows
// past A or B and words past K are zeros, and the bytes past K in the last word of a row (padding
// that may hold anything) are masked to 0, so any M, N, K and any origin pixel are exact. A tile
// inside C whose rows are 16-byte aligned is stored straight into the image; any other one goes
// through shared memory, element by element, inside C only.
//
// Tensor-core integer products accumulate without saturation, modulo 2^32, as the protocol says.
#ifndef PXVM_MATMUL_COOPMAT_NV_GLSL
#define PXVM_MATMUL_COOPMAT_NV_GLSL

#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_NV_cooperative_matrix : require
#extension GL_NV_integer_cooperative_matrix : require
#extension GL_EXT_shader_explicit_arithmetic_types_int8 : require
#extension GL_EXT_shader_explicit_arithmetic_types_int32 : require

#define PX_IMAGE_IN_VEC4
#include "pxvm_kernel.glsl"

#ifdef PX_SIGNED
#define PX_MATRIX icoopmatNV
#else
#define PX_MATRIX ucoopmatNV
#endif

layout(local_size_x = KERNEL_LOCAL_SIZE) in; // 8 subgroups of 32
layout(constant_id = 0) const uint LM = 16u;
layout(constant_id = 1) const uint LN = 16u;
layout(constant_id = 2) const uint LK = 32u;         // bytes
layout(constant_id = 3) const uint TILE_M = 128u;    // a multiple of SUBGROUPS_M * LM
layout(constant_id = 4) const uint TILE_N = 128u;    // a multiple of SUBGROUPS_N * LN
layout(constant_id = 5) const uint TILE_K = 64u;     // bytes of K a step: a multiple of LK, 16
layout(constant_id = 6) const uint SUBGROUPS_M = 2u; // 1, 2, 4 or 8
layout(constant_id = 7) const uint STAGES = 1u;      // 1 or 2

const uint SUBGROUPS = KERNEL_LOCAL_SIZE / 32u;
const uint SUBGROUPS_N = SUBGROUPS / SUBGROUPS_M;
const uint C_ROWS = TILE_M / SUBGROUPS_M / LM;
const uint C_COLS = TILE_N / SUBGROUPS_N / LN;
const uint VECS = TILE_K / 16u;  // uvec4 of a tile row a step
const uint ROW_VECS = VECS + 1u; // padded shared rows
const uint STEP_WORDS = TILE_K / 4u;
const uint KK = TILE_K / LK;                            // matrix products along K a step
const uint A_LOADS = TILE_M * VECS / KERNEL_LOCAL_SIZE; // uvec4 each invocation loads a step
const uint B_LOADS = TILE_N * VECS / KERNEL_LOCAL_SIZE;

const uint A_STAGE = TILE_M * ROW_VECS, B_STAGE = TILE_N * ROW_VECS;

shared uvec4 sa[STAGES * A_STAGE];
shared uvec4 sb[STAGES * B_STAGE];

// Words w .. w + 3 of row `row` of t (rows of kwords words, the last one masked by last_mask),
// zero past the rows and past K. One 128-bit load where the four are whole words of an aligned row.
uvec4 load_vec(Tensor t, uint row, uint w, uint kwords, uint last_mask, bool aligned) {
    if (row >= t.rows || w >= kwords) return uvec4(0u);
    const uint first = row_word(t, push.width, row);
    const uint whole = last_mask == 0xFFFFFFFFu ? kwords : kwords - 1u; // words needing no mask
    if (aligned && w + 4u <= whole) return image_in.vecs[(first + w) >> 2];
    uvec4 v;
    [[unroll]] for (uint i = 0u; i < 4u; ++i) {
        const uint k = w + i;
        const uint mask = k + 1u == kwords ? last_mask : (k < kwords ? 0xFFFFFFFFu : 0u);
        v[i] = PX_IMAGE_WORD(first + min(k, kwords - 1u)) & mask; // an address inside the row
    }
    return v;
}

void main() {
    if (run_stopped_uniform()) return;
    const Tensor c = push.t[0], a = push.t[1], b = push.t[2];
    const uint width = push.width, tid = gl_LocalInvocationIndex;
    const uint m0 = gl_WorkGroupID.y * TILE_M, n0 = gl_WorkGroupID.x * TILE_N;
    const uint kwords = pixel_width(a);
    const uint last_mask = byte_mask(a.cols - 4u * (kwords - 1u));
    const bool wide = (width & 3u) == 0u;
    const bool a_aligned = wide && (a.x & 3u) == 0u, b_aligned = wide && (b.x & 3u) == 0u;
    const uint sub_m = gl_SubgroupID / SUBGROUPS_N, sub_n = gl_SubgroupID % SUBGROUPS_N;

    PX_MATRIX<32, gl_ScopeSubgroup, LM, LN> acc[C_ROWS][C_COLS];
    [[unroll]] for (uint i = 0u; i < C_ROWS; ++i) [[unroll]] for (uint j = 0u; j < C_COLS; ++j)
        acc[i][j] = PX_MATRIX<32, gl_ScopeSubgroup, LM, LN>(0);

    // Invocation tid loads vectors tid + 256 l of the tile: row (tid + 256 l) / VECS.
    uvec4 pa[A_LOADS], pb[B_LOADS];
    [[unroll]] for (uint l = 0u; l < A_LOADS; ++l) {
        const uint e = tid + KERNEL_LOCAL_SIZE * l;
        pa[l] = load_vec(a, m0 + e / VECS, 4u * (e % VECS), kwords, last_mask, a_aligned);
    }
    [[unroll]] for (uint l = 0u; l < B_LOADS; ++l) {
        const uint e = tid + KERNEL_LOCAL_SIZE * l;
        pb[l] = load_vec(b, n0 + e / VECS, 4u * (e % VECS), kwords, last_mask, b_aligned);
    }
    // Step s is computed from stage s % STAGES, after the barrier that ends its stores.
    [[unroll]] for (uint l = 0u; l < A_LOADS; ++l) {
        const uint e = tid + KERNEL_LOCAL_SIZE * l;
        sa[(e / VECS) * ROW_VECS + e % VECS] = pa[l];
    }
    [[unroll]] for (uint l = 0u; l < B_LOADS; ++l) {
        const uint e = tid + KERNEL_LOCAL_SIZE * l;
        sb[(e / VECS) * ROW_VECS + e % VECS] = pb[l];
    }
    barrier();
    uint stage = 0u;
    for (uint k0 = 0u; k0 < kwords; k0 += STEP_WORDS) {
        const bool more = k0 + STEP_WORDS < kwords;
        if (more) { // the next step's loads fly while this one computes
            const uint k1 = k0 + STEP_WORDS;
            [[unroll]] for (uint l = 0u; l < A_LOADS; ++l) {
                const uint e = tid + KERNEL_LOCAL_SIZE * l;
                pa[l] =
                    load_vec(a, m0 + e / VECS, k1 + 4u * (e % VECS), kwords, last_mask, a_aligned);
            }
            [[unroll]] for (uint l = 0u; l < B_LOADS; ++l) {
                const uint e = tid + KERNEL_LOCAL_SIZE * l;
                pb[l] =
                    load_vec(b, n0 + e / VECS, k1 + 4u * (e % VECS), kwords, last_mask, b_aligned);
            }
        }
        const uint a_base = stage * A_STAGE, b_base = stage * B_STAGE;
        // Every matrix of the step is loaded before the first product, so that the loads from
        // shared memory overlap the tensor cores' work.
        PX_MATRIX<8, gl_ScopeSubgroup, LM, LK> ma[KK][C_ROWS];
        PX_MATRIX<8, gl_ScopeSubgroup, LK, LN> mb[KK][C_COLS]; // B's rows are its columns
        [[unroll]] for (uint kk = 0u; kk < KK; ++kk) {
            const uint kv = kk * (LK / 16u);
            [[unroll]] for (uint i = 0u; i < C_ROWS; ++i)
                coopMatLoadNV(ma[kk][i], sa, a_base + ((sub_m * C_ROWS + i) * LM) * ROW_VECS + kv,
                              ROW_VECS, false);
            [[unroll]] for (uint j = 0u; j < C_COLS; ++j)
                coopMatLoadNV(mb[kk][j], sb, b_base + ((sub_n * C_COLS + j) * LN) * ROW_VECS + kv,
                              ROW_VECS, true);
        }
        [[unroll]] for (uint kk = 0u; kk < KK; ++kk) [[unroll]] for (uint j = 0u; j < C_COLS; ++j)
            [[unroll]] for (uint i = 0u; i < C_ROWS; ++i) acc[i][j] =
                coopMatMulAddNV(ma[kk][i], mb[kk][j], acc[i][j]);
        if (!more) break;
        stage = (stage + 1u) % STAGES;
        if (STAGES == 1u) barrier(); // every subgroup is done with the only stage
        [[unroll]] for (uint l = 0u; l < A_LOADS; ++l) {
            const uint e = tid + KERNEL_LOCAL_SIZE * l;
            sa[stage * A_STAGE + (e / VECS) * ROW_VECS + e % VECS] = pa[l];
        }
        [[unroll]] for (uint l = 0u; l < B_LOADS; ++l) {
            const uint e = tid + KERNEL_LOCAL_SIZE * l;
            sb[stage * B_STAGE + (e / VECS) * ROW_VECS + e % VECS] = pb[l];
        }
        barrier();
    }

    const uint M = a.rows, N = b.rows;
    const bool inside = m0 + TILE_M <= M && n0 + TILE_N <= N;
    if (inside && wide && (c.x & 3u) == 0u) {
        [[unroll]] for (uint i = 0u; i < C_ROWS; ++i)
            [[unroll]] for (uint j = 0u; j < C_COLS; ++j) {
            const uint m = m0 + (sub_m * C_ROWS + i) * LM, n = n0 + (sub_n * C_COLS + j) * LN;
            coopMatStoreNV(acc[i][j], image_out.words, row_word(c, width, m) + n, width, false);
        }
        return;
    }
    // Each subgroup stages one accumulator at a time in its own LM x LN words of sa, then its
    // invocations copy the elements inside C.
    barrier(); // every subgroup is done with sa
    const uint staging = gl_SubgroupID * (LM * LN / 4u), lane = gl_SubgroupInvocationID;
    [[unroll]] for (uint i = 0u; i < C_ROWS; ++i) [[unroll]] for (uint j = 0u; j < C_COLS; ++j) {
        coopMatStoreNV(acc[i][j], sa, staging, LN / 4u, false);
        subgroupMemoryBarrierShared();
        subgroupBarrier();
        const uint mi = m0 + (sub_m * C_ROWS + i) * LM, nj = n0 + (sub_n * C_COLS + j) * LN;
        for (uint e = lane; e < LM * LN; e += gl_SubgroupSize) {
            const uint m = mi + e / LN, n = nj + e % LN;
            if (m < M && n < N)
                image_out.words[row_word(c, width, m) + n] = sa[staging + e / 4u][e % 4u];
        }
        subgroupBarrier(); // read before the next accumulator overwrites it
    }
}

#endif
