// The integer semantics of Pixel Protocol v1 (docs/PROTOCOL.md section 5), written once for every
// GLSL kernel: dtype sizes and ranges, element extraction and insertion within a 32-bit word,
// masked dot products of packed 8-bit words, requantisation in 64-bit arithmetic emulated with
// 32-bit halves, floor division. Pure functions of values: no buffer is touched here (the tensor
// addressing is in pxvm_tensor.glsl). Only core Vulkan 1.2 GLSL (no 64-bit or 8-bit types).
#ifndef PXVM_ARITH_GLSL
#define PXVM_ARITH_GLSL

#include "pxvm_protocol.h"

const int INT_MIN = int(0x80000000u);
const int INT_MAX = 0x7FFFFFFF;

uint channel(uint pixel, uint c) {
    return (pixel >> (8u * c)) & 255u;
}

uint dtype_size(uint dtype) {
    switch (dtype) {
    case DTYPE_U8:
    case DTYPE_I8:
        return 1u;
    case DTYPE_U16:
        return 2u;
    case DTYPE_I32:
        return 4u;
    default:
        return 0u;
    }
}

int dtype_min(uint dtype) {
    return dtype == DTYPE_I8 ? -128 : dtype == DTYPE_I32 ? INT_MIN : 0;
}

int dtype_max(uint dtype) {
    return dtype == DTYPE_U8 ? 255 : dtype == DTYPE_I8 ? 127 : dtype == DTYPE_U16 ? 65535 : INT_MAX;
}

// The low n bytes (0-4) of a word set.
uint byte_mask(uint n) {
    return n >= 4u ? 0xFFFFFFFFu : (1u << (8u * n)) - 1u;
}

// Element j (0 .. 4 / dtype_size - 1) of a word, sign- or zero-extended per its dtype.
int extract_element(uint word, uint dtype, uint j) {
    switch (dtype) {
    case DTYPE_U8:
        return int(bitfieldExtract(word, int(8u * j), 8));
    case DTYPE_I8:
        return bitfieldExtract(int(word), int(8u * j), 8);
    case DTYPE_U16:
        return int(bitfieldExtract(word, int(16u * j), 16));
    default:
        return int(word);
    }
}

// Element j of an output word replaced by value (already in the dtype's range, or wrapping i32).
uint insert_element(uint word, uint dtype, uint j, int value) {
    const uint bits = 8u * dtype_size(dtype);
    return bits == 32u ? uint(value) : bitfieldInsert(word, uint(value), int(j * bits), int(bits));
}

// The four bytes of a word as values, sign-extended (i8) or zero-extended (u8).
ivec4 unpack_bytes(uint word, bool is_signed) {
    if (is_signed) return (ivec4(int(word)) << ivec4(24, 16, 8, 0)) >> 24;
    return ivec4((uvec4(word) >> uvec4(0, 8, 16, 24)) & 255u);
}

// Sum of the byte products of two words of u8 or i8 elements, of which the first n (1-4) count.
// Every product fits 16 bits and the sum of four 17 bits, so the result is exact; callers add
// results modulo 2^32 as the protocol says.
uint dot4(uint a, uint b, uint n, bool is_signed) {
    const uint mask = byte_mask(n); // zero bytes add nothing
    const ivec4 x = unpack_bytes(a & mask, is_signed), y = unpack_bytes(b & mask, is_signed);
    return uint(x.x * y.x + x.y * y.y + x.z * y.z + x.w * y.w);
}

// Floor division for a positive divisor (floor_div in reference_interpreter.cpp).
int floor_div(int a, int b) {
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

// clamp(q + zero_point) for a 64-bit q = (hi, lo), into [lo_bound, hi_bound] (32-bit bounds).
int clamp64(int hi, uint lo, int zero_point, int lo_bound, int hi_bound) {
    uint carry;
    lo = uaddCarry(lo, uint(zero_point), carry);
    hi += int(carry) + (zero_point < 0 ? -1 : 0);
    const bool fits_i32 = hi == (int(lo) >> 31);
    const int value = fits_i32 ? int(lo) : (hi < 0 ? INT_MIN : INT_MAX);
    return clamp(value, lo_bound, hi_bound);
}

// One requantised element: (v * multiplier + 2^(shift-1)) >> shift in 64 bits from 32-bit halves,
// plus zero_point, saturated to out_dtype's range.
int requant_value(int v, int multiplier, uint shift, int zero_point, uint out_dtype) {
    int hi, lo_signed;
    imulExtended(v, multiplier, hi, lo_signed); // exact: |p| <= 2^62
    uint lo = uint(lo_signed);
    if (shift > 0u) {
        const uint bit = shift - 1u; // rounding: ties toward +infinity
        if (bit < 32u) {
            uint carry;
            lo = uaddCarry(lo, 1u << bit, carry);
            hi += int(carry);
        } else {
            hi += int(1u << (bit - 32u));
        }
        if (shift < 32u) { // arithmetic shift of (hi, lo)
            lo = (lo >> shift) | (uint(hi) << (32u - shift));
            hi >>= shift;
        } else {
            lo = uint(hi >> (shift - 32u));
            hi >>= 31;
        }
    }
    return clamp64(hi, lo, zero_point, dtype_min(out_dtype), dtype_max(out_dtype));
}

// ---- The transformer instructions' arithmetic (rmsnorm, attend), 64-bit from 32-bit halves ----

// Whether the signed 64-bit (ahi, alo) <= (bhi, blo).
bool le64(int ahi, uint alo, int bhi, uint blo) {
    return ahi < bhi || (ahi == bhi && alo <= blo);
}

// (hi, lo) + v for a signed 32-bit v.
void add64(inout int hi, inout uint lo, int v) {
    uint carry;
    lo = uaddCarry(lo, uint(v), carry);
    hi += int(carry) + (v < 0 ? -1 : 0);
}

// The largest r with r * r <= (hi, lo), an unsigned 64-bit value below 2^63, bit by bit.
uint isqrt64(uint hi, uint lo) {
    uint r = 0u;
    for (int bit = 31; bit >= 0; --bit) {
        const uint candidate = r | (1u << uint(bit));
        uint shi, slo;
        umulExtended(candidate, candidate, shi, slo);
        if (shi < hi || (shi == hi && slo <= lo)) r = candidate;
    }
    return r;
}

// One rmsnorm output: clamp(floor((A + r) / (2r)), -128, 127) with A = floor(2 x gain / 2^shift),
// x already clamped to +-RMSNORM_LIMIT and r >= 1 (rmsnorm in reference_interpreter.cpp). The
// quotient is found by a binary search over the 256 outputs: the largest q with 2 q r <= A + r.
int rmsnorm_value(int x, int gain, uint shift, uint r) {
    int hi, lo_signed;
    imulExtended(x, gain, hi, lo_signed); // |x gain| < 2^55
    uint lo = uint(lo_signed);
    hi = (hi << 1) | int(lo >> 31); // 2 x gain
    lo <<= 1;
    if (shift >= 32u) { // arithmetic shift of (hi, lo) by 0-62
        lo = uint(hi >> min(shift - 32u, 31u));
        hi >>= 31;
    } else if (shift > 0u) {
        lo = (lo >> shift) | (uint(hi) << (32u - shift));
        hi >>= shift;
    }
    uint carry; // B = A + r
    lo = uaddCarry(lo, r, carry);
    hi += int(carry);
    int q = -128;
    for (int step = 128; step >= 1; step >>= 1) {
        const int candidate = q + step;
        if (candidate > 127) continue;
        uint phi, plo; // 2 |candidate| r, then its sign
        umulExtended(uint(2 * abs(candidate)), r, phi, plo);
        int shi = int(phi);
        if (candidate < 0) { // negate (phi, plo)
            plo = ~plo + 1u;
            shi = ~shi + int(plo == 0u ? 1 : 0);
        }
        if (le64(shi, plo, hi, lo)) q = candidate;
    }
    return q;
}

// attend's table index: min(floor(distance * multiplier / 2^shift), 255) in 64 bits.
uint attend_index(uint distance, uint multiplier, uint shift) {
    uint hi, lo;
    umulExtended(distance, multiplier, hi, lo);
    if (shift >= 32u) return min(hi >> (shift - 32u), 255u); // shift <= 62
    if (shift == 0u) return hi != 0u ? 255u : min(lo, 255u);
    if ((hi >> shift) != 0u) return 255u;
    return min((lo >> shift) | (hi << (32u - shift)), 255u);
}

// floor((2 acc + total) / (2 total)) for total > 0, without overflowing: the floor quotient, plus
// one when the remainder is at least half of total. |acc| <= 2^31 and total <= 2^24.
int attend_round(int acc, int total) {
    const uint t = uint(total);
    int q;
    if (acc >= 0) {
        q = int(uint(acc) / t);
    } else {
        const uint magnitude = uint(-acc); // 2^31 for INT_MIN, as the wrap gives
        q = -int((magnitude + t - 1u) / t);
    }
    const int remainder = acc - q * total; // in [0, total): exact although q * total may wrap
    return q + (2 * remainder >= total ? 1 : 0);
}

// Whether this invocation ran out of llvmpipe's loop budget: lavapipe silently ends every loop of
// an invocation once it has run 65535 loop iterations in all, after which every loop stops after
// one iteration, so a loop whose trip count (2) the compiler cannot know stops short. `height` is
// the image height (at most MAX_HEIGHT < 2^16), which the compiler cannot know.
bool loop_budget_exhausted(uint height) {
    uint iterations = 0u;
    for (uint i = 0u; i < 2u + (height >> 16); ++i)
        ++iterations;
    return iterations != 2u + (height >> 16);
}

#endif
