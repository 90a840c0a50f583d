#!/usr/bin/env python3
"""Writes the generated cases of tests/conformance (python3 standard library only).

shapes/  matmul shapes around the GPU kernels' tile sizes (M, N in 15 ... 65, K in 63 ... 129 bytes)
         and dot, argmax, gather_mean and element-wise shapes around their workgroup sizes;
large/   programs large enough for many workgroups (a 200x150x300 matmul, relu over 300x1000, ...).

Each case is NAME.pxi (the program image) and NAME.json; the data are pseudo-random with fixed seeds,
so the script is deterministic. Big inputs are periodic with a few unique rows so the PNGs stay small.
The outputs are committed; re-run it after changing it, then regenerate the goldens:
    python3 tests/conformance/make_large_cases.py
    pxconform --update-golden tests/conformance     (or per case: pxrun --device cpu NAME.pxi --out NAME.golden.png)
"""
import json
import os
import random
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))

SIZE = {"u8": 1, "i8": 1, "u16": 2, "i32": 4}
CODE = {"u8": 1, "i8": 2, "u16": 3, "i32": 4}
OPS = {"dot": 68, "matmul": 77, "add_bias": 66, "relu": 82, "argmax": 65, "gather_mean": 71}


class Program:
    """A pixel program under construction: row 0 holds the instructions, other rows the data."""

    def __init__(self, width, height):
        assert 1 <= width <= 32768 and 1 <= height <= 32768
        self.w, self.h = width, height
        self.px = bytearray(4 * width * height)
        self.pc = 0
        self.tensors = {}

    def _emit(self, *pixels):
        for p in pixels:
            assert self.pc < self.w, "row 0 is full"
            o = 4 * self.pc
            self.px[o:o + 4] = bytes(p)
            self.pc += 1

    def tensor(self, tid, dtype, x, y, rows, cols):
        self._emit((84, tid, CODE[dtype], 0), (x & 255, x >> 8, y & 255, y >> 8),
                   (rows & 255, rows >> 8, cols & 255, cols >> 8))
        pw = (SIZE[dtype] * cols + 3) // 4
        assert y >= 1 and x + pw <= self.w and y + rows <= self.h, (tid, x, y, rows, cols)
        self.tensors[tid] = (dtype, x, y, rows, cols)

    def op(self, name, *ids):
        ids = list(ids) + [0] * (3 - len(ids))
        self._emit((OPS[name], ids[0], ids[1], ids[2]))

    def requant(self, out, inp, multiplier, shift, zero_point):
        m = multiplier & 0xFFFFFFFF
        self._emit((81, out, inp, 0), tuple(m.to_bytes(4, "little")), (shift, zero_point & 255, 0, 0))

    def fill(self, tid, values):
        """Writes the elements of tensor tid row-major (padding bytes keep their values)."""
        dtype, x, y, rows, cols = self.tensors[tid]
        s = SIZE[dtype]
        assert len(values) == rows * cols
        for r in range(rows):
            o = 4 * ((y + r) * self.w + x)
            row = values[r * cols:(r + 1) * cols]
            self.px[o:o + s * cols] = b"".join((v & ((1 << (8 * s)) - 1)).to_bytes(s, "little") for v in row)

    def garbage(self, x, y, npx, rows, rng):
        """Random bytes over a pixel rectangle (written before the data: padding keeps them)."""
        for r in range(rows):
            o = 4 * ((y + r) * self.w + x)
            self.px[o:o + 4 * npx] = bytes(rng.randrange(256) for _ in range(4 * npx))

    def pad_garbage(self, tid, rng):
        """Random bytes in the padding of each row's partial last pixel of tensor tid."""
        dtype, x, y, rows, cols = self.tensors[tid]
        used = SIZE[dtype] * cols
        for r in range(rows):
            o = 4 * ((y + r) * self.w + x)
            for i in range(used, 4 * ((used + 3) // 4)):
                self.px[o + i] = rng.randrange(1, 256)

    def png(self):
        def chunk(kind, body):
            return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        stride = 4 * self.w
        best = None
        for f in (0, 2):  # filter type 0 (none) or 2 (up) for every row, whichever compresses better
            raw = bytearray()
            for y in range(self.h):
                line = self.px[y * stride:(y + 1) * stride]
                if f == 2 and y > 0:
                    prev = self.px[(y - 1) * stride:y * stride]
                    line = bytes((a - b) & 255 for a, b in zip(line, prev))
                raw += bytes([f if y > 0 else 0]) + line
            z = zlib.compress(bytes(raw), 9)
            if best is None or len(z) < len(best): best = z
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", self.w, self.h, 8, 6, 0, 0, 0)) +
                chunk(b"IDAT", best) + chunk(b"IEND", b""))

    def write(self, path, covers):
        full = os.path.join(HERE, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full + ".pxi", "wb") as f:
            f.write(self.png())
        with open(full + ".json", "w") as f:
            f.write(json.dumps({"covers": covers, "expect": "pass"}, indent=2) + "\n")


def rand_values(rng, dtype, n):
    lo, hi = {"u8": (0, 255), "i8": (-128, 127), "u16": (0, 65535), "i32": (-2**31, 2**31 - 1)}[dtype]
    return [rng.randint(lo, hi) for _ in range(n)]


def periodic_rows(rng, dtype, rows, cols, period, unique_every):
    """rows x cols values: row r repeats row r % period, except every unique_every-th row, which is
    random of its own (so tile and row mix-ups still show while deflate finds the repeats)."""
    base = [rand_values(rng, dtype, cols) for _ in range(period)]
    out = []
    for r in range(rows):
        out += rand_values(rng, dtype, cols) if r % unique_every == unique_every - 1 else base[r % period]
    return out


# ---------------------------------------------------------------- shapes/: matmul tiles
MATMUL_SHAPES = [  # (M, N, K, dtype): every M and N of 15 16 17 31 32 33 63 64 65, every K of 63 64 65 127 128 129
    (15, 15, 63, "i8"), (16, 16, 64, "u8"), (17, 17, 65, "i8"), (31, 33, 127, "i8"), (32, 32, 128, "u8"),
    (33, 31, 129, "i8"), (63, 65, 63, "u8"), (64, 64, 64, "i8"), (65, 63, 128, "i8"), (15, 64, 129, "u8"),
    (65, 17, 127, "i8"), (32, 65, 65, "i8"), (63, 16, 128, "u8"), (1, 33, 129, "i8"), (33, 1, 63, "u8"),
    (64, 15, 65, "i8"), (16, 65, 127, "u8"), (65, 65, 129, "u8"),
]


def matmul_shape(M, N, K, dtype, seed):
    rng = random.Random(seed)
    pw = (K + 3) // 4
    xa, xb = 1, 1 + pw           # A at odd x = 1, B right of it, C right of B
    xc = xb + pw + 1
    p = Program(max(16, xc + N), 1 + max(M, N))
    p.tensor(1, dtype, xa, 1, M, K)
    p.tensor(2, dtype, xb, 1, N, K)
    p.tensor(3, "i32", xc, 1, M, N)
    p.op("matmul", 3, 1, 2)
    p.garbage(xa, 1, pw, M, rng)  # padding bytes of A's and B's partial last pixels, and stale C values
    p.garbage(xb, 1, pw, N, rng)
    p.garbage(xc, 1, N, M, rng)
    p.fill(1, rand_values(rng, dtype, M * K))
    p.fill(2, rand_values(rng, dtype, N * K))
    tiles = "16x16 tiles" if M <= 16 else "32x32 tiles"
    p.write(f"shapes/matmul_{dtype}_{M}x{N}x{K}",
            f"matmul {dtype} M={M} N={N} K={K} bytes (GPU {tiles}, K steps of 64 or 128 bytes), A at odd x, random data with garbage padding and stale C.")


def dot_shape(cols, dtype, seed):
    rng = random.Random(seed)
    pw = (cols + 3) // 4
    p = Program(pw + 2, 3)
    p.tensor(1, dtype, 0, 1, 1, cols)
    p.tensor(2, dtype, 0, 2, 1, cols)
    p.tensor(3, "i32", pw, 1, 1, 1)
    p.op("dot", 3, 1, 2)
    p.pad_garbage(1, rng)
    p.pad_garbage(2, rng)
    a, b = rand_values(rng, dtype, 1021), rand_values(rng, dtype, 1019)  # periodic: the PNG stays small
    p.fill(1, [a[c % 1021] for c in range(cols)])
    p.fill(2, [b[c % 1019] for c in range(cols)])
    p.write(f"shapes/dot_{dtype}_{cols}", f"dot {dtype} over 1x{cols} ({pw} words; the GPU kernel reads 2048 words a workgroup): workgroup boundaries and a partial last pixel.")


def argmax_shape(rows, cols, dtype, seed):
    rng = random.Random(seed)
    pw = (SIZE[dtype] * cols + 3) // 4
    p = Program(pw + 2, rows + 1)
    p.tensor(1, dtype, 0, 1, rows, cols)
    p.tensor(2, "i32", pw, 1, rows, 1)
    p.op("argmax", 2, 1)
    p.pad_garbage(1, rng)
    vals = []
    small = {"u8": (0, 15), "i8": (-8, 7), "u16": (0, 300), "i32": (-1000, 1000)}[dtype]
    top = {"u8": 255, "i8": 127, "u16": 65535, "i32": 2**31 - 1}[dtype]
    base = [rng.randint(*small) for _ in range(509)]
    for r in range(rows):
        row = [base[(c + 37 * r) % 509] for c in range(cols)]  # rows are rotations of one random run
        # the maximum at chosen places: first, last, word and lane boundaries, ties further right
        spots = [[0], [cols - 1], [cols // 2, cols - 1], [rng.randrange(cols)] * 1,
                 [4 * (cols // 8), 4 * (cols // 8) + 1], [cols - 1, 0]][r % 6]
        for s in spots:
            row[s] = top
        vals += row
    p.fill(1, vals)
    p.write(f"shapes/argmax_{dtype}_{rows}x{cols}",
            f"argmax {dtype} over {rows} rows of {cols} ({pw} words a row, 1 to 256 GPU lanes a row): maxima at the first, last and lane-boundary columns, ties to the lowest index.")


def gather_shape(dims, ntok, seed):
    rng = random.Random(seed)
    V = 40
    pw = (dims + 3) // 4
    p = Program(pw + 2 + dims + (ntok + 1) // 2, 1 + V)
    p.tensor(1, "i8", 0, 1, V, dims)
    p.tensor(2, "u16", pw, 1, 1, ntok)
    p.tensor(3, "i32", pw + (ntok + 1) // 2, 1, 1, dims)
    p.op("gather_mean", 3, 1, 2)
    p.garbage(0, 1, pw, V, rng)
    p.fill(1, rand_values(rng, "i8", V * dims))
    p.fill(2, [rng.randint(1, V - 1) for _ in range(ntok)])
    p.write(f"shapes/gather_mean_{dims}dims_{ntok}tokens",
            f"gather_mean over an i8 table of {dims} columns ({pw} words; the GPU kernel takes up to 32 words a workgroup) with {ntok} u16 tokens.")


def elementwise_shape(cols, seed):
    """relu, requant and add_bias over one row of 257 words: one invocation past a 256-wide workgroup."""
    rng = random.Random(seed)
    p = Program(2 * cols + 32, 5)
    p.tensor(1, "i32", 0, 1, 1, cols)
    p.tensor(2, "i32", 0, 2, 1, cols)
    p.tensor(3, "i8", 0, 3, 1, 4 * cols)
    p.tensor(4, "i8", 0, 4, 1, 4 * cols)
    p.tensor(5, "i32", cols, 3, 1, cols)      # the requant output
    p.op("add_bias", 1, 2)
    p.requant(5, 1, 1 << 20, 24, -3)
    p.op("relu", 4, 3)
    p.fill(1, rand_values(rng, "i32", cols))
    p.fill(2, rand_values(rng, "i32", cols))
    p.fill(3, rand_values(rng, "i8", 4 * cols))
    p.write(f"shapes/elementwise_{cols}_words",
            f"add_bias, requant and relu over rows of {cols} words (the GPU runs 256 invocations a workgroup): the first word of a second workgroup.")


# ---------------------------------------------------------------- large/
def matmul_200x150x300():
    rng = random.Random(200)
    M, N, K = 200, 150, 300
    pw = K // 4
    p = Program(2 * pw + N, 1 + M)
    p.tensor(1, "i8", 0, 1, M, K)
    p.tensor(2, "i8", pw, 1, N, K)
    p.tensor(3, "i32", 2 * pw, 1, M, N)
    p.op("matmul", 3, 1, 2)
    p.fill(1, rand_values(rng, "i8", M * K))
    p.fill(2, rand_values(rng, "i8", N * K))
    p.write("large/matmul_i8_200x150x300", "A 200x150x300 i8 matmul with random data: many 32x32 GPU tiles, partial tiles at both edges.")


def matmul_tile64():
    rng = random.Random(64)
    M, N, K = 1025, 449, 65  # ceil(M/64) * ceil(N/64) = 17 * 8 = 136 >= 128: 64x64 tiles
    pw = (K + 3) // 4
    p = Program(2 * pw + N, 1 + M)
    p.tensor(1, "u8", 0, 1, M, K)
    p.tensor(2, "u8", pw, 1, N, K)
    p.tensor(3, "i32", 2 * pw, 1, M, N)
    p.op("matmul", 3, 1, 2)
    p.pad_garbage(1, rng)
    p.pad_garbage(2, rng)
    p.fill(1, periodic_rows(rng, "u8", M, K, 7, 61))
    p.fill(2, periodic_rows(rng, "u8", N, K, 5, 37))
    p.write("large/matmul_u8_1025x449x65", "A 1025x449x65 u8 matmul: enough tiles for the GPU's 64x64 tiles, a partial tile row and column, K = 65 (partial pixel, garbage padding).")


def relu_large():
    rng = random.Random(300)
    R, C = 300, 1000
    pw = C // 4
    p = Program(2 * pw, 1 + R)
    p.tensor(1, "i8", 0, 1, R, C)
    p.tensor(2, "i8", pw, 1, R, C)
    p.op("relu", 2, 1)     # out of place
    p.op("relu", 1, 1)     # then in place
    p.fill(1, periodic_rows(rng, "i8", R, C, 11, 29))
    p.write("large/relu_i8_300x1000", "relu over a 300x1000 i8 tensor, out of place and then in place: many workgroups of the element-wise kernel.")


def argmax_large():
    rng = random.Random(5000)
    R, C = 100, 5000
    pw = C // 4
    p = Program(pw + 2, 1 + R)
    p.tensor(1, "i8", 0, 1, R, C)
    p.tensor(2, "i32", pw, 1, R, 1)
    p.tensor(3, "u16", pw + 1, 1, R, 1)
    p.op("argmax", 2, 1)
    p.op("argmax", 3, 1)
    base = [rng.randint(-100, 50) for _ in range(509)]
    vals = []
    for r in range(R):
        row = [base[(c + 31 * r) % 509] for c in range(C)]
        k = r % 5
        spots = ([rng.randrange(C)] if k == 0 else [C - 1] if k == 1 else [0, C - 1] if k == 2 else
                 sorted(rng.sample(range(C), 3)) if k == 3 else [])  # k == 4: the row's own max (50) wins, ties galore
        for s in spots:
            row[s] = 100 + (r % 3)
        vals += row
    p.fill(1, vals)
    p.write("large/argmax_i8_100x5000", "argmax over 100 rows of 5000 i8 (256 GPU lanes a row) into i32 and u16 columns: maxima anywhere, at both ends, and many ties, where the lowest index must win across lanes.")


def dot_large():
    rng = random.Random(4000)
    R, C = 100, 4000
    pw = C // 4
    p = Program(2 * pw + 2, 1 + R)
    p.tensor(1, "u8", 0, 1, R, C)
    p.tensor(2, "u8", pw, 1, R, C)
    p.tensor(3, "i32", 2 * pw, 1, 1, 1)
    p.tensor(4, "i8", 0, 1, R, C)   # the same pixels read as i8
    p.tensor(5, "i8", pw, 1, R, C)
    p.tensor(6, "i32", 2 * pw + 1, 1, 1, 1)
    p.op("dot", 3, 1, 2)
    p.op("dot", 6, 4, 5)
    a_base = rand_values(rng, "u8", 509)
    b_base = rand_values(rng, "u8", 503)
    a = [a_base[(c + 13 * r) % 509] for r in range(R) for c in range(C)]
    b = [b_base[(c + 7 * r) % 503] for r in range(R) for c in range(C)]
    assert sum(x * y for x, y in zip(a, b)) > 2**32  # the u8 sum wraps past 2^32
    p.fill(1, a)
    p.fill(2, b)
    p.write("large/dot_100x4000", "dot over 100x4000 tensors as u8 (its sum wraps past 2^32) and as i8 views of the same pixels: 49 GPU workgroups whose partial sums are added modulo 2^32.")


def gather_large():
    rng = random.Random(3000)
    V, D, NT = 500, 64, 3000
    p = Program(16 + 16 + 64 + 64, 1 + V)
    p.tensor(1, "i8", 0, 1, V, D)
    p.tensor(2, "u16", 16, 1, 30, 100)     # 3000 ids, row-major over 30 rows of 50 pixels
    p.tensor(3, "i32", 66, 1, 1, D)
    p.tensor(4, "u16", 16, 31, 30, 100)    # 3000 ids with an end token 0 at index 2500
    p.tensor(5, "i32", 66, 2, 1, D)
    p.tensor(6, "u8", 0, 1, V, D)          # the table read as u8
    p.tensor(7, "i32", 66, 3, 1, D)
    p.op("gather_mean", 3, 1, 2)
    p.op("gather_mean", 5, 1, 4)
    p.op("gather_mean", 7, 6, 2)
    p.fill(1, rand_values(rng, "i8", V * D))
    ids = [rng.randint(1, V - 1) for _ in range(NT)]
    p.fill(2, ids)
    ids2 = [rng.randint(1, V - 1) for _ in range(NT)]
    ids2[2500] = 0
    p.fill(4, ids2)
    p.write("large/gather_mean_3000_tokens", "gather_mean with 3000 u16 tokens (and 2500 before an end token) over a 500x64 i8 table, and over its u8 view.")


def gather_max_tokens():
    p = Program(16384, 8)
    p.tensor(1, "u16", 0, 1, 2, 32768)    # 65536 ids: the most a token tensor may hold
    p.tensor(2, "u8", 0, 3, 4, 4)
    p.tensor(3, "i8", 1, 3, 4, 4)
    p.tensor(4, "i32", 2, 3, 1, 4)
    p.tensor(5, "i32", 2, 4, 1, 4)
    p.op("gather_mean", 4, 2, 1)
    p.op("gather_mean", 5, 3, 1)
    p.fill(1, [1 + (i % 3) for i in range(65536)])
    p.fill(2, [0, 0, 0, 0, 255, 255, 0, 1, 255, 254, 0, 2, 255, 255, 0, 3])
    p.fill(3, [0, 0, 0, 0, -128, 127, -128, 1, -128, 126, 127, -1, -128, 127, -128, 0])
    p.write("large/gather_mean_65536_tokens", "gather_mean with 65536 tokens (the limit) and no end token: sums up to 65536 * 255 and -128 stay exact, means round correctly.")


def wrap_k65535():
    K = 65535                 # the most columns a tensor may have: 16384 pixels, the last one partial
    p = Program(16384, 5)
    p.tensor(1, "u8", 0, 1, 1, K)
    p.tensor(2, "u8", 0, 2, 2, K)
    p.tensor(3, "i32", 0, 4, 1, 2)
    p.tensor(4, "u8", 0, 2, 1, K)
    p.tensor(5, "i32", 2, 4, 1, 1)
    p.op("matmul", 3, 1, 2)
    p.op("dot", 5, 1, 4)
    for y in (1, 2, 3):
        p.px[4 * y * 16384:4 * (y + 1) * 16384] = b"\x07" * (4 * 16384)  # garbage in the padding byte
    p.fill(1, [255] * K)
    p.fill(2, [255] * K + [255] * 33100 + [0] * (K - 33100))
    p.write("large/wrap_u8_k65535", "matmul and dot with K = 65535 u8 255s: 65025 * 65535 wraps past 2^32 and 65025 * 33100 past 2^31 (i32 results modulo 2^32).")


def main():
    for i, (M, N, K, dtype) in enumerate(MATMUL_SHAPES):
        matmul_shape(M, N, K, dtype, 100 + i)
    for i, (cols, dtype) in enumerate([(8192, "u8"), (8193, "i8"), (16389, "u8")]):
        dot_shape(cols, dtype, 200 + i)
    for i, (rows, cols, dtype) in enumerate([(12, 32, "u8"), (12, 36, "i8"), (12, 1028, "u8"),
                                             (6, 8192, "i8"), (6, 8196, "u16"), (6, 2049, "i32")]):
        argmax_shape(rows, cols, dtype, 300 + i)
    for i, (dims, ntok) in enumerate([(128, 300), (132, 301), (4, 1000)]):
        gather_shape(dims, ntok, 400 + i)
    elementwise_shape(257, 500)
    matmul_200x150x300()
    matmul_tile64()
    relu_large()
    argmax_large()
    dot_large()
    gather_large()
    gather_max_tokens()
    wrap_k65535()


if __name__ == "__main__":
    main()
