"""The integer arithmetic of pxVM's instructions, in numpy: a model written from the spec.

One function per instruction, on arrays rather than images: each takes the instruction's input
tensors (rows x cols integer arrays, any integer dtype holding the tensor's values) and returns its
output tensor in the output's dtype. The arithmetic is exact; every bound below is the reason a
64-bit step cannot overflow. The sources of the rules: docs/PROTOCOL.md section 5 (matmul, requant,
embed, argmax), the hand-computed cases of tests/conformance/transformer/*.pxs and their comments,
the rules stated in runtime/src/program.cpp (plan_program's checks, check_where) and the constants
of kernels/pxvm_protocol.h and kernels/pxvm_attend_exp.h (whose table the test compares with the
formula here).

Products of 8-bit values are summed in float64 matrix products (BLAS): every partial sum is an
integer below 2^53, so the result is exact whatever the order of the additions.

Data checks raise PixelFault("TOKEN_RANGE", reason), as the executors fault; shape and operand
rules the static checker would refuse raise PixelFault("SHAPE_MISMATCH" / "BAD_OPERAND", ...).

  /usr/bin/python3 model/test_pxvm_int.py --build build     checks this model against the reference
"""
import math

import numpy as np

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
RMSNORM_LIMIT = 2**24 - 1  # rmsnorm clamps its input to +-(2^24 - 1)
MAX_SHIFT = 62  # requant's, rmsnorm's and attend's shifts are 0 ... 62
MAX_ATTEND_POSITIONS = 1024
MAX_HEAD_SIZE = 32768
# attend's exponentials: ATTEND_EXP[i] = round(2^14 exp(-i/16)), a step of 1/16 nat; index 255 is 0.
ATTEND_EXP = np.array([math.floor(2**14 * math.exp(-i / 16) + 0.5) for i in range(256)], np.int64)
DTYPES = {"u8": np.uint8, "i8": np.int8, "u16": np.uint16, "i32": np.int32}
RANGES = {"u8": (0, 255), "i8": (-128, 127), "u16": (0, 65535), "i32": (INT32_MIN, INT32_MAX)}
FAULT_CODES = {"BAD_OPERAND": 3, "SHAPE_MISMATCH": 8, "TOKEN_RANGE": 10}


class PixelFault(Exception):
    """An instruction faults: code_name as in docs/PROTOCOL.md ("TOKEN_RANGE", ...), reason a sentence."""

    def __init__(self, code_name, reason):
        super().__init__(f"{code_name}: {reason}")
        self.code_name, self.code, self.reason = code_name, FAULT_CODES[code_name], reason


def _require(ok, code_name, reason):
    if not ok:
        raise PixelFault(code_name, reason)


def _i64(a):
    return np.asarray(a).astype(np.int64, copy=False)


def _wrap32(v):
    """v modulo 2^32 as two's complement int32."""
    w = np.bitwise_and(_i64(v), 0xFFFFFFFF)
    return np.where(w > INT32_MAX, w - 2**32, w).astype(np.int32)


def _floor_div(a, b):
    return np.floor_divide(a, b)  # numpy's integer // rounds toward -inf


def matmul(a, b):
    """c[m][n] = sum_k a[m][k] b[n][k], wrapping modulo 2^32 (a: M x K, b: N x K, both u8 or i8)."""
    a, b = np.asarray(a), np.asarray(b)
    _require(a.shape[1] == b.shape[1], "SHAPE_MISMATCH", "a and b must have the same K")
    if a.shape[1] < 2**37:  # |a b| <= 2^16, so every partial sum is below 2^53: exact in float64
        c = (a.astype(np.float64) @ b.astype(np.float64).T).astype(np.int64)
    else:  # int64 products wrap modulo 2^64, which keeps them right modulo 2^32
        c = a.astype(np.int64) @ b.astype(np.int64).T
    return _wrap32(c)


def requant(x, multiplier, shift, zero_point, out_dtype):
    """out = clamp(q + zero_point, out_dtype's range) with p = x multiplier (exact, |p| <= 2^62) and
    q = (p + 2^(shift-1)) >> shift (arithmetic; q = p when shift = 0): the nearest integer to
    p / 2^shift, ties toward +inf. x is i32, multiplier i32, shift 0 ... 62, zero_point i8."""
    _require(0 <= shift <= MAX_SHIFT, "BAD_OPERAND", f"shift {shift} is larger than 62")
    p = _i64(x) * int(multiplier)
    q = p if shift == 0 else (p + (1 << (shift - 1))) >> shift  # |p| + 2^61 < 2^63
    lo, hi = RANGES[out_dtype]
    return np.clip(q + int(zero_point), lo, hi).astype(DTYPES[out_dtype])


def argmax(x):
    """out[r][0] = the column of the largest value of row r; the lowest index wins ties."""
    return np.argmax(np.asarray(x), axis=1).astype(np.int64)[:, None]  # numpy returns the first


def embed(table, tokens):
    """out[b][j E + d] = table[tokens[b][j]][d] with E = table.cols, the values copied unchanged.
    Faults TOKEN_RANGE at the first id (row-major) that is negative or >= table.rows."""
    table, tokens = np.asarray(table), _i64(tokens)
    bad = np.flatnonzero((tokens < 0) | (tokens >= table.shape[0]))
    if bad.size:
        raise PixelFault("TOKEN_RANGE", f"token {bad[0]} is id {tokens.flat[bad[0]]} but the table "
                                        f"has {table.shape[0]} rows")
    return table[tokens].reshape(tokens.shape[0], tokens.shape[1] * table.shape[1])


def add(acc, x):
    """acc + x, saturating to the i32 range at both ends instead of wrapping (the residual add)."""
    return np.clip(_i64(acc) + _i64(x), INT32_MIN, INT32_MAX).astype(np.int32)


def lut(x, table, signed):
    """out = table[x + 128] for i8 (signed), table[x] for u8; table is 1 x 256 (or 256) of the same
    dtype, which is the output's."""
    table = np.asarray(table).reshape(256)
    return table[_i64(x) + (128 if signed else 0)]


def isqrt(n):
    """The largest r with r r <= n, element-wise, for 0 <= n < 2^64 (uint64; r < 2^32)."""
    n = np.asarray(n, dtype=np.uint64)
    r = np.sqrt(n.astype(np.float64)).astype(np.uint64)  # within a few units of the answer
    r = np.minimum(r, np.uint64(2**32 - 1))
    while (high := r * r > n).any():
        r = r - high
    while (low := (r + np.uint64(1)) * (r + np.uint64(1)) <= n).any():
        r = r + low
    return r


def rmsnorm(x, gain, shift):
    """Per row: x' = clamp(x, +-(2^24 - 1)); r = max(isqrt(sum x'^2), 1);
    out = clamp(floor(x' gain / (r 2^shift) + 1/2), -128, 127) (nearest, ties toward +inf), i8.
    x is i32 (rows x C), gain i32 (1 x C), shift 0 ... 62.

    Exactly: x' gain / (r 2^shift) + 1/2 = (2 x' gain / 2^shift + r) / (2 r), and floor(floor(y) / k)
    = floor(y / k) for a whole k > 0, so out = floor((floor(2 x' gain / 2^shift) + r) / (2 r)), where
    |2 x' gain| < 2^56 and sum x'^2 < 32768 2^48 = 2^63 (uint64)."""
    _require(0 <= shift <= MAX_SHIFT, "BAD_OPERAND", f"shift {shift} is larger than 62")
    x = np.clip(_i64(x), -RMSNORM_LIMIT, RMSNORM_LIMIT)
    gain = _i64(gain).reshape(1, -1)
    _require(gain.shape[1] == x.shape[1], "SHAPE_MISMATCH", "gain must be 1 x in.cols")
    squares = np.sum((x * x).astype(np.uint64), axis=1, dtype=np.uint64)
    r = np.maximum(isqrt(squares), np.uint64(1)).astype(np.int64)[:, None]
    a = (2 * x * gain) >> shift  # arithmetic shift: floor(2 x' gain / 2^shift)
    return np.clip(_floor_div(a + r, 2 * r), -128, 127).astype(np.int8)


def _check_where(where, slots, positions, ordered):
    """where[r] = (slot b, position p): 0 <= b < slots and 0 <= p < positions, else TOKEN_RANGE at
    the first bad row; ordered (kvstore): rows in strictly increasing (b, p) order, no repeats."""
    b, p = where[:, 0], where[:, 1]
    bad = (b < 0) | (b >= slots) | (p < 0) | (p >= positions)
    if ordered:
        bad[1:] |= (b[1:] < b[:-1]) | ((b[1:] == b[:-1]) & (p[1:] <= p[:-1]))
    if bad.any():
        r = int(np.argmax(bad))
        raise PixelFault("TOKEN_RANGE", f"where row {r} is (slot {b[r]}, position {p[r]}) of a "
                                        f"cache of {slots} slots x {positions} positions" +
                                        (" (rows must increase)" if ordered else ""))


def kvstore(cache, rows, where):
    """Returns the new cache: cache[p][b C + j] = rows[r][j] for every row r with (b, p) = where[r],
    C = rows.cols; the cache (positions x (slots C)) keeps every other element. where (rows.rows x 2,
    u16 or i32) is checked first (TOKEN_RANGE): b < slots, p < positions, both >= 0, the rows in
    strictly increasing (b, p) order."""
    cache, rows, where = np.asarray(cache), np.asarray(rows), _i64(where)
    positions, cols = cache.shape
    c = rows.shape[1]
    _require(where.shape == (rows.shape[0], 2), "SHAPE_MISMATCH", "where must be rows.rows x 2")
    _require(cols % c == 0, "SHAPE_MISMATCH", "cache.cols must be a multiple of rows.cols")
    slots = cols // c
    _check_where(where, slots, positions, ordered=True)
    new = cache.copy()
    new.reshape(positions, slots, c)[where[:, 1], where[:, 0]] = rows
    return new


def attend(q, cache, where, heads, multiplier, shift, chunk=1 << 22):
    """Causal attention with integer softmax, out i8 (q's shape).

    q is R x d (i8), d = heads hd; cache is positions x (slots 2d) (i8): slot b's keys at columns
    2 d b + [0, d), its values at 2 d b + d + [0, d); where[r] = (b, p) (checked first, TOKEN_RANGE:
    b < slots, p < positions, both >= 0, any order). Per row r and head h (columns h hd + [0, hd)),
    over the positions t = 0 ... p only (the rest contribute nothing):
      s_t   = sum_c q[r][c] key_t[c]                        (|s_t| <= 2^14 hd <= 2^29)
      i_t   = min((max_t' s_t' - s_t) multiplier >> shift, 255)   (distance < 2^30: < 2^62)
      e_t   = ATTEND_EXP[i_t]
      out[r][c] = floor((2 sum_t e_t value_t[c] + E) / (2 E)),  E = sum_t e_t >= 2^14
    the weighted mean rounded once to nearest, ties toward +inf (|sum_t e_t value_t| <= 2^31).
    multiplier is u32, shift 0 ... 62, heads 1 ... 255. Rows are batched per slot, chunk bounds the
    score elements held at once."""
    q, cache, where = np.asarray(q), np.asarray(cache), _i64(where)
    rows, d = q.shape
    positions, cols = cache.shape
    _require(1 <= heads <= 255, "BAD_OPERAND", f"heads {heads} is not 1 ... 255")
    _require(0 <= shift <= MAX_SHIFT, "BAD_OPERAND", f"score shift {shift} is larger than 62")
    _require(0 <= multiplier < 2**32, "BAD_OPERAND", f"multiplier {multiplier} is not a u32")
    _require(where.shape == (rows, 2), "SHAPE_MISMATCH", "where must be q.rows x 2")
    _require(cols % (2 * d) == 0, "SHAPE_MISMATCH", "cache.cols must be a multiple of 2 q.cols")
    _require(positions <= MAX_ATTEND_POSITIONS, "SHAPE_MISMATCH", "more than 1024 positions")
    _require(d % heads == 0, "SHAPE_MISMATCH", f"q.cols must be a multiple of heads ({heads})")
    hd = d // heads
    _require(hd <= MAX_HEAD_SIZE, "SHAPE_MISMATCH", "a head has more than 32768 dimensions")
    slots = cols // (2 * d)
    _check_where(where, slots, positions, ordered=False)

    kv = cache.astype(np.float64).reshape(positions, slots, 2, heads, hd)
    qf = q.astype(np.float64).reshape(rows, heads, hd).transpose(1, 0, 2)  # heads x R x hd
    out = np.empty((rows, d), np.int8)
    for b in np.unique(where[:, 0]):
        in_slot = np.flatnonzero(where[:, 0] == b)
        n = max(1, chunk // (heads * positions))
        for i in range(0, in_slot.size, n):
            r = in_slot[i:i + n]
            p = where[r, 1]
            t = int(p.max()) + 1  # positions read by any of these rows
            keys = kv[:t, b, 0].transpose(1, 2, 0)  # heads x hd x t
            values = kv[:t, b, 1].transpose(1, 0, 2)  # heads x t x hd
            s = (qf[:, r] @ keys).astype(np.int64)  # heads x n x t, exact
            read = np.arange(t)[None, None, :] <= p[None, :, None]
            best = np.where(read, s, np.iinfo(np.int64).min).max(axis=2, keepdims=True)
            distance = np.where(read, best - s, 0).astype(np.uint64)
            index = np.minimum((distance * np.uint64(multiplier)) >> np.uint64(shift), 255)
            e = np.where(read, ATTEND_EXP[index.astype(np.int64)], 0)
            total = e.sum(axis=2, keepdims=True)
            acc = (e.astype(np.float64) @ values).astype(np.int64)  # heads x n x hd, exact
            out[r] = _floor_div(2 * acc + total, 2 * total).transpose(1, 0, 2).reshape(r.size, d)
    return out
