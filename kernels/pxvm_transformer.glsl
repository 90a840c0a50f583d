// The tensor-reading parts of the transformer instructions (docs/PROTOCOL.md section 5), written
// once for the GPU interpreter and the scheduled kernels: the `where` check of kvstore and attend,
// and attend's output words. The arithmetic is in pxvm_arith.glsl; the includer defines
// PX_IMAGE_WORD(index) as for pxvm_tensor.glsl.
#ifndef PXVM_TRANSFORMER_GLSL
#define PXVM_TRANSFORMER_GLSL

#include "pxvm_attend_exp.h"
#include "pxvm_tensor.glsl"

// Whether row r of `where` names a slot < slots and a position < positions, and, when `ordered`
// (kvstore), comes after row r - 1 in (slot, position) order (check_where in program.cpp).
bool where_row_ok(Tensor where, uint width, uint r, uint slots, uint positions, bool ordered) {
    const int b = load_element(where, width, r, 0u), p = load_element(where, width, r, 1u);
    if (b < 0 || uint(b) >= slots || p < 0 || uint(p) >= positions) return false;
    if (!ordered || r == 0u) return true;
    const int pb = load_element(where, width, r - 1u, 0u),
              pp = load_element(where, width, r - 1u, 1u);
    return b > pb || (b == pb && p > pp);
}

// Σ_i q[r][c0 + i] · cache[t][key + c0 + i] for i < hd: one head's score of position t. Whole
// words, four a loop iteration, where the head starts on a word in both rows.
int head_score(Tensor q, Tensor cache, uint width, uint r, uint t, uint key, uint c0, uint hd) {
    if ((c0 & 3u) == 0u && (key & 3u) == 0u && (hd & 3u) == 0u) {
        const uint qa = row_word(q, width, r) + c0 / 4u;
        const uint ka = row_word(cache, width, t) + (key + c0) / 4u;
        const uint words = hd / 4u;
        uint sum = 0u;
        uint w = 0u;
        for (; w + 4u <= words; w += 4u)
            sum += dot4(PX_IMAGE_WORD(qa + w), PX_IMAGE_WORD(ka + w), 4u, true) +
                   dot4(PX_IMAGE_WORD(qa + w + 1u), PX_IMAGE_WORD(ka + w + 1u), 4u, true) +
                   dot4(PX_IMAGE_WORD(qa + w + 2u), PX_IMAGE_WORD(ka + w + 2u), 4u, true) +
                   dot4(PX_IMAGE_WORD(qa + w + 3u), PX_IMAGE_WORD(ka + w + 3u), 4u, true);
        for (uint j = 0u; j < 3u; ++j)
            if (w + j < words)
                sum += dot4(PX_IMAGE_WORD(qa + w + j), PX_IMAGE_WORD(ka + w + j), 4u, true);
        return int(sum); // exact: |sum| <= 2^14 * 2^15
    }
    int sum = 0;
    for (uint i = 0u; i < hd; ++i)
        sum += load_element(q, width, r, c0 + i) * load_element(cache, width, t, key + c0 + i);
    return sum;
}

// Word w of out's row r (its 1-4 elements; the other bytes of `word` kept): attend for the row's
// (slot b, position p), one pass for the largest score and one for the exponentials and the
// weighted sums of every column of the word in the same head (attend in reference_interpreter.cpp).
uint attend_word(Tensor q, Tensor cache, uint width, uint r, uint b, uint p, uint w, uint heads,
                 uint multiplier, uint shift, uint word) {
    const uint d = q.cols, hd = d / heads, key = b * 2u * d, value = key + d;
    const uint n = min(4u, d - 4u * w);
    uint done = 0u;
    for (uint j0 = 0u; j0 < 4u; ++j0) {
        if (j0 >= n || ((done >> j0) & 1u) != 0u) continue;
        const uint h = (4u * w + j0) / hd, c0 = h * hd;
        uint mask = 0u; // the word's columns in head h
        for (uint j = 0u; j < 4u; ++j)
            if (j < n && (4u * w + j) / hd == h) mask |= 1u << j;
        int best = head_score(q, cache, width, r, 0u, key, c0, hd);
        for (uint t = 1u; t <= p; ++t)
            best = max(best, head_score(q, cache, width, r, t, key, c0, hd));
        int total = 0;
        ivec4 acc = ivec4(0);
        for (uint t = 0u; t <= p; ++t) {
            const uint distance = uint(best - head_score(q, cache, width, r, t, key, c0, hd));
            const int e = int(ATTEND_EXP[attend_index(distance, multiplier, shift)]);
            total += e;
            for (uint j = 0u; j < 4u; ++j)
                if (((mask >> j) & 1u) != 0u)
                    acc[j] += e * load_element(cache, width, t, value + 4u * w + j);
        }
        for (uint j = 0u; j < 4u; ++j)
            if (((mask >> j) & 1u) != 0u)
                word = insert_element(word, DTYPE_I8, j, attend_round(acc[j], total));
        done |= mask;
    }
    return word;
}

#endif
