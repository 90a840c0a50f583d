#version 450
// Scheduled kernel `argmax` (out[r][0] = the lowest column index of the largest value of row r of
// in, any in dtype, u16 or i32 out): LANES invocations (specialization constant 0, a power of two
// up to the workgroup size) share one row, so a workgroup takes KERNEL_LOCAL_SIZE / LANES rows.
// Lane l reads chunks l, l + LANES, ... of four words of the row (coalesced) and keeps its best
// element, the lowest index on ties: a whole chunk at a 16-byte boundary is one 128-bit load whose
// largest element is found first, and searched for its index only when it beats the lane's best
// (rarely, after the first chunks); other chunks go element by element. A tree in shared memory
// combines the lanes. Each invocation loops over
// ceil(pixel_width(in) / 4) / LANES chunks at most, and reports STATUS_INCOMPLETE if lavapipe's
// loop budget cut that short.
#extension GL_GOOGLE_include_directive : require

#define PX_IMAGE_IN_VEC4
#include "pxvm_kernel.glsl"

layout(local_size_x = KERNEL_LOCAL_SIZE) in;
layout(constant_id = 0) const uint LANES = 32u;

const uint THREADS = KERNEL_LOCAL_SIZE;

// The largest element of a word of this dtype (all of its elements).
int word_max(uint w, uint dtype) {
    switch (dtype) {
    case DTYPE_U8:
        return int(max(max(w & 255u, (w >> 8) & 255u), max((w >> 16) & 255u, w >> 24)));
    case DTYPE_I8:
        return max(max(bitfieldExtract(int(w), 0, 8), bitfieldExtract(int(w), 8, 8)),
                   max(bitfieldExtract(int(w), 16, 8), int(w) >> 24));
    case DTYPE_U16:
        return int(max(w & 65535u, w >> 16));
    default:
        return int(w);
    }
}

shared int s_value[THREADS];
shared uint s_index[THREADS];

void main() {
    if (run_stopped_uniform()) return;
    const Tensor o = push.t[0], i = push.t[1];
    const uint tid = gl_LocalInvocationIndex, lane = tid % LANES;
    const uint r = gl_WorkGroupID.x * (THREADS / LANES) + tid / LANES;
    const bool busy = r < i.rows; // every invocation takes part in the barriers
    const uint words = pixel_width(i), chunks = (words + 3u) / 4u, n = per_word(i);
    const uint first = row_word(i, push.width, r);
    uint best = NONE;
    int best_value = 0;
    const uint whole = i.cols / n; // words that are all elements
    if (busy)
        for (uint q = lane; q < chunks; q += LANES) { // ascending within the lane
            const uint p = 4u * q;
            if (((first + p) & 3u) == 0u && p + 4u <= whole) {
                // A whole aligned chunk: its largest element first; only when that beats the
                // lane's best is the chunk searched for its first index.
                const uvec4 v = image_in.vecs[(first + p) >> 2];
                const int m = max(max(word_max(v.x, i.dtype), word_max(v.y, i.dtype)),
                                  max(word_max(v.z, i.dtype), word_max(v.w, i.dtype)));
                if (best != NONE && m <= best_value) continue; // ties keep the lower index
                bool found = false;
                [[unroll]] for (uint k = 0u; k < 4u; ++k)
                    [[unroll]] for (uint j = 0u; j < 4u;
                                    ++j) if (!found && j < n &&
                                             extract_element(v[k], i.dtype, j) == m) {
                    found = true;
                    best = (p + k) * n + j;
                }
                best_value = m;
                continue;
            }
            uvec4 v = uvec4(0u);
            for (uint w = p; w < min(p + 4u, words); ++w)
                v[w - p] = PX_IMAGE_WORD(first + w);
            [[unroll]] for (uint k = 0u; k < 4u; ++k) [[unroll]] for (uint j = 0u; j < 4u; ++j) {
                const uint c = (p + k) * n + j;
                if (j < n && c < i.cols) {
                    const int value = extract_element(v[k], i.dtype, j);
                    if (best == NONE || value > best_value) { // strict: the lowest index wins
                        best = c;
                        best_value = value;
                    }
                }
            }
        }
    s_index[tid] = best;
    s_value[tid] = best_value;
    for (uint stride = LANES / 2u; stride > 0u; stride /= 2u) {
        barrier();
        if (lane < stride) {
            const uint other = s_index[tid + stride];
            const int other_value = s_value[tid + stride];
            const uint mine = s_index[tid];
            if (other != NONE && (mine == NONE || other_value > s_value[tid] ||
                                  (other_value == s_value[tid] && other < mine))) {
                s_index[tid] = other;
                s_value[tid] = other_value;
            }
        }
    }
    barrier();
    if (busy && lane == 0u) {
        if (loop_budget_exhausted(push.height)) {
            report_incomplete();
            return;
        }
        const uint index = row_word(o, push.width, r);
        image_out.words[index] =
            insert_element(image_out.words[index], o.dtype, 0u, int(s_index[tid]));
    }
}
