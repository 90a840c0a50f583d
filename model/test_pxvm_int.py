#!/usr/bin/python3
"""Checks the numpy model (model/pxvm_int.py) against pxVM's C++ reference interpreter.

Generates random valid instances of add, lut, rmsnorm, kvstore and attend (and kvstore followed by
attend on the same cache), and of matmul, requant, embed and argmax, with the edges of every
bound (extreme values, shifts 0 and 62, the rmsnorm clamp, 1024 positions, 32768 columns, ...);
packs many of them into each program (.pxs, re-declaring tensor ids per instance), assembles and
runs each program on the reference (`pxc asm`, `pxrun --device cpu`), reads the result PNG and
compares every output tensor with the model, then every other data byte with the input. Then
programs that fault with TOKEN_RANGE (a bad `where` row of kvstore or attend, or a bad embed token
id, after valid instances): the fault pixel (W-1, 0) = (10, pc & 255, pc >> 8, 255), exit status 2,
the instances before it applied and nothing after it. Deterministic (fixed seed); python3 standard
library and numpy only; about 15 s.

  /usr/bin/python3 model/test_pxvm_int.py --build build [--keep /tmp/pxvm-int]
"""
import argparse
import math
import os
import random
import re
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pxvm_int as px  # noqa: E402

SIZE = {"u8": 1, "i8": 1, "u16": 2, "i32": 4}
LE = {"u8": "u1", "i8": "i1", "u16": "<u2", "i32": "<i4"}
I32_EXTREMES = [px.INT32_MIN, px.INT32_MIN + 1, -1, 0, 1, px.INT32_MAX - 1, px.INT32_MAX]


# ---- PNG reading (8-bit RGBA, not interlaced: what pxrun writes) ---------------------------------

def read_png(path):
    """The pixels of an 8-bit RGBA PNG as an H x W x 4 uint8 array."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: not a PNG"
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    w, h, depth, colour, _, _, interlace = ihdr
    assert (depth, colour, interlace) == (8, 6, 0), f"{path}: not 8-bit RGBA without interlacing"
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8).reshape(h, 1 + 4 * w)
    return unfilter(raw[:, 0], raw[:, 1:].reshape(h, w, 4))


def unfilter(types, f):
    """Undoes the PNG filters (0 none, 1 sub, 2 up, 3 average, 4 Paeth) of H x W x 4 bytes.

    Pixel (x, y) depends on (x-1, y), (x, y-1) and (x-1, y-1), so the pixels of one anti-diagonal
    x + y = k are independent: they are decoded together, W + H - 1 vectorised steps, in an array
    d[k + 2][y + 1] = pixel (k - y, y) with zeros around it (the left and upper neighbours of the
    edges); `pixels` is the H x W x 4 view of such an array."""
    h, w, _ = f.shape
    assert types.max(initial=0) <= 4, "unknown PNG filter type"
    d = np.zeros((w + h + 1, h + 1, 4), np.int16)
    fd = np.zeros_like(d)

    def pixels(a):
        k, y, _ = a.strides
        return np.lib.stride_tricks.as_strided(a[2, 1:], (h, w, 4), (k + y, k, a.strides[2]))

    pixels(fd)[...] = f
    is_type = [(types == n)[:, None] for n in range(5)]
    count = [np.concatenate([[0], np.cumsum(types == n)]).tolist() for n in range(5)]
    for k in range(w + h - 1):
        lo, hi = max(0, k - w + 1), min(h - 1, k) + 1  # rows lo ... hi - 1
        a, b, c = d[k + 1, lo + 1:hi + 1], d[k + 1, lo:hi], d[k, lo:hi]
        present = [count[n][hi] > count[n][lo] for n in range(5)]
        pred = 0
        if present[1]:
            pred = np.where(is_type[1][lo:hi], a, pred)
        if present[2]:
            pred = np.where(is_type[2][lo:hi], b, pred)
        if present[3]:
            pred = np.where(is_type[3][lo:hi], (a + b) >> 1, pred)
        if present[4]:
            pa, pb, pc = np.abs(b - c), np.abs(a - c), np.abs(a + b - 2 * c)
            paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
            pred = np.where(is_type[4][lo:hi], paeth, pred)
        d[k + 2, lo + 1:hi + 1] = (fd[k + 2, lo + 1:hi + 1] + pred) & 255
    return pixels(d).astype(np.uint8)


# ---- Programs ----------------------------------------------------------------------------------

class Tensor:
    def __init__(self, dtype, values):
        self.dtype, self.values = dtype, np.asarray(values).reshape(np.shape(values)[0], -1)
        self.rows, self.cols = self.values.shape
        self.width = -(-SIZE[dtype] * self.cols // 4)  # pixels
        self.x0 = self.y0 = None

    def write(self, image, values):
        """Stores values (rows x cols) into image (H x 4W bytes) at this tensor's place."""
        lo, hi = px.RANGES[self.dtype]
        values = np.asarray(values)
        assert values.shape == (self.rows, self.cols) and values.min() >= lo and values.max() <= hi
        b = values.astype(LE[self.dtype]).view(np.uint8).reshape(self.rows, -1)
        image[self.y0:self.y0 + self.rows, 4 * self.x0:4 * self.x0 + b.shape[1]] = b

    def read(self, image):
        b = image[self.y0:self.y0 + self.rows, 4 * self.x0:4 * self.x0 + SIZE[self.dtype] * self.cols]
        return np.ascontiguousarray(b).view(LE[self.dtype]).reshape(self.rows, self.cols).astype(np.int64)


class Instance:
    """Tensors (name -> Tensor, initial values), instructions ("attend {out}, {q}, ..." with their
    pixel counts), the model's results (name -> values) or fault (the model raised PixelFault)."""

    def __init__(self, kind, tensors, ops, results=None, fault=None):
        self.kind, self.tensors, self.ops, self.results, self.fault = kind, tensors, ops, results, fault
        self.width = self.height = 0

    def pixels(self):
        return 3 * len(self.tensors) + sum(n for _, n in self.ops)

    def layout(self, w):
        """Places the tensors left to right in a block, wrapping at w (positions relative to the
        block until the program places it)."""
        x = y = line = 0
        for t in self.tensors.values():
            assert t.width <= w
            if x + t.width > w:
                x, y, line = 0, y + line, 0
            t.x0, t.y0 = x, y
            x, line = x + t.width, max(line, t.rows)
            self.width = max(self.width, x)
        self.height = y + line


class Program:
    def __init__(self, name, w, instances):
        self.name, self.w, self.instances = name, w, instances
        # Blocks placed on shelves, tallest first (rows 1 and below).
        for inst in instances:
            inst.layout(w)
        y, x, shelf = 1, 0, 0
        for inst in sorted(instances, key=lambda i: -i.height):
            if x + inst.width > w:
                y, x, shelf = y + shelf, 0, 0
            for t in inst.tensors.values():
                t.x0, t.y0 = t.x0 + x, t.y0 + y
            x, shelf = x + inst.width, max(shelf, inst.height)
        self.h = y + shelf
        assert self.w * self.h <= 2**28 and self.h <= 32768

    def source(self):
        """The .pxs text; sets each instance's pc (of its first operation)."""
        lines, pc = [f".image {self.w} {self.h}"], 0
        for n, inst in enumerate(self.instances):
            ids = {name: f"t{i + 1}" for i, name in enumerate(inst.tensors)}
            lines.append(f"; instance {n}: {inst.kind}")
            for name, t in inst.tensors.items():
                lines.append(f"tensor {ids[name]}, {t.dtype}, {t.x0}, {t.y0}, {t.rows}, {t.cols}")
                lines.append(f".data {ids[name]} " + " ".join(map(str, t.values.ravel().tolist())))
            pc += 3 * len(inst.tensors)
            inst.pc = pc
            for text, n_pixels in inst.ops:
                lines.append(text.format(**ids))
                pc += n_pixels
        assert pc < self.w  # the last pixel of row 0 stays 0: no fault pixel unless a fault
        return "\n".join(lines) + "\n"

    def images(self):
        """The data rows before the run and, by the model, after it: H x 4W bytes each."""
        before = np.zeros((self.h, 4 * self.w), np.uint8)
        for inst in self.instances:
            for t in inst.tensors.values():
                t.write(before, t.values)
        after = before.copy()
        for inst in self.instances:
            if inst.fault:
                break
            for name, values in inst.results.items():
                inst.tensors[name].write(after, values)
        return before, after


def pack(name, instances, w):
    """Programs of width w holding the instances in order, as many per program as row 0 takes."""
    programs, batch, used = [], [], 0
    for inst in instances:
        if batch and used + inst.pixels() > w - 1:
            programs.append(Program(f"{name}{len(programs)}", w, batch))
            batch, used = [], 0
        batch.append(inst)
        used += inst.pixels()
    if batch:
        programs.append(Program(f"{name}{len(programs)}", w, batch))
    return programs


# ---- Generated instances -----------------------------------------------------------------------

class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)
        self.np = np.random.default_rng(seed)

    def bytes_(self, dtype, shape, style=None):
        """u8 or i8 values: uniform, small (many ties), extreme (only the ends) or constant."""
        lo, hi = px.RANGES[dtype]
        style = style or self.r.choice(["uniform"] * 4 + ["small", "extreme", "constant"])
        if style == "uniform":
            return self.np.integers(lo, hi + 1, shape)
        if style == "small":
            mid = (lo + hi + 1) // 2
            return self.np.integers(mid - 3, mid + 4, shape)
        if style == "extreme":
            return self.np.choice([lo, hi], shape)
        return np.full(shape, self.r.choice([lo, hi, 0 if lo < 0 else 128, self.r.randint(lo, hi)]))

    def i32(self, shape, style=None):
        """i32 values: full range, around 2^30 (sums cross the ends), extremes, or per-row scale."""
        style = style or self.r.choice(["full", "near", "extreme", "scaled", "small"])
        if style == "full":
            return self.np.integers(px.INT32_MIN, px.INT32_MAX + 1, shape)
        if style == "near":
            return self.np.choice([-1, 1], shape) * self.np.integers(2**30 - 1000, 2**30 + 1000, shape)
        if style == "extreme":
            return self.np.choice(I32_EXTREMES, shape)
        if style == "small":
            return self.np.integers(-1000, 1001, shape)
        scale = 2 ** self.np.integers(0, 32, (shape[0], 1))  # each row its own magnitude
        return np.clip(self.np.integers(-scale, scale + 1, shape), px.INT32_MIN, px.INT32_MAX)

    def shape(self, max_rows=6, max_cols=40):
        return self.r.randint(1, max_rows), self.r.choice([1, 2, 3, 4, 5, self.r.randint(1, max_cols)])

    def add(self):
        rows, cols = self.shape()
        acc = Tensor("i32", self.i32((rows, cols)))
        if self.r.random() < 0.15:  # in place: add acc, acc
            return Instance("add", {"acc": acc}, [("add {acc}, {acc}", 1)],
                            {"acc": px.add(acc.values, acc.values)})
        x = Tensor("i32", self.i32((rows, cols)))
        return Instance("add", {"acc": acc, "x": x}, [("add {acc}, {x}", 1)],
                        {"acc": px.add(acc.values, x.values)})

    def lut(self):
        dtype = self.r.choice(["u8", "i8"])
        lo, hi = px.RANGES[dtype]
        rows, cols = self.shape()
        if self.r.random() < 0.2:  # every input value once
            rows, cols = 1, 256
            x = np.arange(lo, hi + 1)[None]
        else:
            x = self.bytes_(dtype, (rows, cols))
        table = Tensor(dtype, self.bytes_(dtype, (1, 256), self.r.choice(["uniform", "extreme"])))
        expected = px.lut(x, table.values, signed=dtype == "i8")
        if self.r.random() < 0.2:  # in place: lut x, x, table
            return Instance("lut", {"x": Tensor(dtype, x), "table": table},
                            [("lut {x}, {x}, {table}", 1)], {"x": expected})
        tensors = {"x": Tensor(dtype, x), "table": table, "out": Tensor(dtype, self.bytes_(dtype, x.shape))}
        return Instance("lut", tensors, [("lut {out}, {x}, {table}", 1)], {"out": expected})

    def rmsnorm_values(self, rows, cols):
        x = np.empty((rows, cols), np.int64)
        for r in range(rows):
            style = self.r.choice(["scaled"] * 4 + ["zero", "clamp", "extreme", "single"])
            if style == "scaled":
                k = self.r.randint(0, 31)
                x[r] = np.clip(self.np.integers(-(2**k), 2**k + 1, cols), px.INT32_MIN, px.INT32_MAX)
            elif style == "zero":
                x[r] = 0
            elif style == "clamp":  # beyond +-(2^24 - 1)
                x[r] = self.np.choice([-1, 1], cols) * self.np.integers(2**24 - 2, 2**31, cols)
            elif style == "extreme":
                x[r] = self.np.choice([px.INT32_MIN, px.INT32_MAX, px.RMSNORM_LIMIT,
                                       -px.RMSNORM_LIMIT, 2**24, -(2**24)], cols)
            else:
                x[r] = 0
                x[r, self.r.randrange(cols)] = self.r.choice([1, -1, px.INT32_MIN, self.r.randint(-99, 99)])
        return x

    def rmsnorm_gain(self, cols):
        if self.r.random() < 0.6:  # calibrated: outputs mostly inside -128 ... 127
            shift = self.r.choice([0, 1, self.r.randint(0, 20), self.r.randint(20, 40)])
            scale = min(2**shift * math.sqrt(cols) * self.r.uniform(0.5, 300), px.INT32_MAX)
            gain = np.round(scale * self.np.uniform(-1, 1, cols)).astype(np.int64)
        else:
            shift = self.r.choice([0, 62, self.r.randint(0, 62)])
            gain = self.i32((1, cols), self.r.choice(["full", "extreme", "small"]))
        return np.clip(gain, px.INT32_MIN, px.INT32_MAX).reshape(1, cols), shift

    def rmsnorm_instance(self, x, gain, shift):
        tensors = {"x": Tensor("i32", x), "gain": Tensor("i32", gain),
                   "out": Tensor("i8", self.bytes_("i8", x.shape))}
        return Instance("rmsnorm", tensors, [(f"rmsnorm {{out}}, {{x}}, {{gain}}, {shift}", 2)],
                        {"out": px.rmsnorm(x, gain, shift)})

    def rmsnorm(self):
        rows = self.r.randint(1, 5)
        if self.r.random() < 0.15:
            # The clamp's edge: x[0] at or beyond the limit, the rest +-1, so r = 2^24 - 1; gains of
            # (2n + 1)(2^24 - 1) / 2 rounded up put |x gain / r| just above n + 1/2.
            cols = self.r.randint(2, 8)
            x = self.np.choice([-1, 1], (rows, cols))
            x[:, 0] = self.np.choice([2**24, -(2**24), px.RMSNORM_LIMIT, -px.RMSNORM_LIMIT,
                                      px.INT32_MAX, px.INT32_MIN], rows)
            n = self.np.integers(-128, 128, (1, cols))
            return self.rmsnorm_instance(x, (px.RMSNORM_LIMIT * (2 * n + 1) + 1) // 2, 0)
        cols = self.r.choice([1, 2, 3, 4, 7, self.r.randint(1, 64), self.r.randint(1, 64), 384])
        return self.rmsnorm_instance(self.rmsnorm_values(rows, cols), *self.rmsnorm_gain(cols))

    def where_rows(self, n, slots, positions, ordered):
        """n rows (slot, position): kvstore's distinct and increasing, attend's any, with the
        positions 0, 1 and the last often."""
        if ordered:
            flat = sorted(self.r.sample(range(slots * positions), n))
            return np.array([[f // positions, f % positions] for f in flat], np.int64)
        special = [0, min(1, positions - 1), positions - 1]
        return np.array([[self.r.randrange(slots), self.r.choice(special + [self.r.randrange(positions)])]
                         for _ in range(n)], np.int64)

    def kvstore(self):
        dtype = self.r.choice(["u8", "i8"])
        cols = self.r.choice([4, 8, 12, 16, 32, 64])
        slots, positions = self.r.randint(1, 4), self.r.choice([1, 2, 3, 7, 16, 100])
        n = self.r.randint(1, min(slots * positions, 8))
        cache = Tensor(dtype, self.bytes_(dtype, (positions, slots * cols)))
        rows = Tensor(dtype, self.bytes_(dtype, (n, cols)))
        where = Tensor(self.r.choice(["u16", "i32"]), self.where_rows(n, slots, positions, True))
        return Instance("kvstore", {"cache": cache, "rows": rows, "where": where},
                        [("kvstore {cache}, {rows}, {where}", 1)],
                        {"cache": px.kvstore(cache.values, rows.values, where.values)})

    def score_scale(self, q, cache, heads):
        """attend's multiplier and shift: mostly calibrated from the data so that the table indices
        spread over 0 ... 255, else the extremes."""
        mode = self.r.choice(["calibrated"] * 5 + ["zero", "max", "one", "random", "shift62"])
        if mode == "calibrated":
            d = q.shape[1]
            keys = cache[:, :d].astype(np.float64)
            spread = np.std(q.astype(np.float64) @ keys.T) / math.sqrt(heads) + 1
            shift = self.r.randint(8, 40)
            multiplier = round(2**shift * self.r.choice([8, 32, 128, 512]) / spread)
            return min(max(multiplier, 0), 2**32 - 1), shift
        return {"zero": (0, self.r.randint(0, 62)), "max": (2**32 - 1, self.r.choice([0, 1, 20, 31])),
                "one": (1, 0), "random": (self.r.randrange(2**32), self.r.randint(0, 62)),
                "shift62": (2**32 - 1, 62)}[mode]

    def attend_instance(self, heads, hd, slots, positions, n, style=None, scale=None):
        d = heads * hd
        q = self.bytes_("i8", (n, d), style)
        cache = self.bytes_("i8", (positions, slots * 2 * d), style)
        multiplier, shift = scale or self.score_scale(q, cache, heads)
        where = self.where_rows(n, slots, positions, False)
        tensors = {"q": Tensor("i8", q), "cache": Tensor("i8", cache),
                   "where": Tensor(self.r.choice(["u16", "i32"]), where),
                   "out": Tensor("i8", self.bytes_("i8", (n, d)))}
        return Instance("attend", tensors,
                        [(f"attend {{out}}, {{q}}, {{cache}}, {{where}}, {heads}, {multiplier}, {shift}", 3)],
                        {"out": px.attend(q, cache, where, heads, multiplier, shift)})

    def attend(self):
        heads = self.r.choice([1, 1, 2, 3, 4, 6])
        hd = self.r.choice([1, 2, 3, 4, 5, 8, 16, 32, 64])
        positions = self.r.choice([1, 2, 3, 5, 16, 64, 200] + ([1024] if heads * hd <= 16 else []))
        return self.attend_instance(heads, hd, self.r.randint(1, 3), positions, self.r.randint(1, 8))

    def kvstore_attend(self):
        """kvstore keys and values of new positions, then attend from the same cache and where."""
        heads, hd = self.r.choice([1, 2, 4]), self.r.choice([2, 4, 8, 16])
        d, slots, positions = heads * hd, self.r.randint(1, 3), self.r.choice([2, 3, 9, 40])
        n = self.r.randint(1, min(slots * positions, 6))
        cache = self.bytes_("i8", (positions, slots * 2 * d))
        kv = self.bytes_("i8", (n, 2 * d))
        where = self.where_rows(n, slots, positions, True)
        q = self.bytes_("i8", (n, d))
        multiplier, shift = self.score_scale(q, cache, heads)
        new_cache = px.kvstore(cache, kv, where)
        tensors = {"cache": Tensor("i8", cache), "kv": Tensor("i8", kv),
                   "where": Tensor(self.r.choice(["u16", "i32"]), where), "q": Tensor("i8", q),
                   "out": Tensor("i8", self.bytes_("i8", (n, d)))}
        ops = [("kvstore {cache}, {kv}, {where}", 1),
               (f"attend {{out}}, {{q}}, {{cache}}, {{where}}, {heads}, {multiplier}, {shift}", 3)]
        return Instance("kvstore+attend", tensors, ops,
                        {"cache": new_cache,
                         "out": px.attend(q, new_cache, where, heads, multiplier, shift)})

    def matmul(self):
        dtype = self.r.choice(["u8", "i8"])
        m, n = self.r.randint(1, 6), self.r.randint(1, 8)
        k = self.r.choice([1, 2, 3, 4, 5, 17, 64, self.r.randint(1, 300)])
        a, b = Tensor(dtype, self.bytes_(dtype, (m, k))), Tensor(dtype, self.bytes_(dtype, (n, k)))
        return Instance("matmul", {"c": Tensor("i32", self.i32((m, n), "full")), "a": a, "b": b},
                        [("matmul {c}, {a}, {b}", 1)], {"c": px.matmul(a.values, b.values)})

    def requant(self):
        rows, cols = self.shape()
        out_dtype = self.r.choice(["u8", "i8", "i32"])
        x = self.i32((rows, cols))
        multiplier = self.r.choice([0, 1, -1, px.INT32_MIN, px.INT32_MAX, self.r.randint(1, 2**16),
                                    self.r.randint(px.INT32_MIN, px.INT32_MAX)])
        largest = int(np.abs(x).max()) * abs(multiplier)
        shift = self.r.choice([0, 1, 62, self.r.randint(0, 62),  # else outputs mostly in range:
                               min(62, max(0, largest.bit_length() - self.r.randint(1, 12)))])
        zero_point = self.r.randint(-128, 127)
        text = f", {multiplier}, {shift}, {zero_point}"
        expected = px.requant(x, multiplier, shift, zero_point, out_dtype)
        if out_dtype == "i32" and self.r.random() < 0.3:  # in place
            return Instance("requant", {"x": Tensor("i32", x)}, [("requant {x}, {x}" + text, 3)], {"x": expected})
        out = Tensor(out_dtype, self.bytes_(out_dtype, x.shape) if out_dtype != "i32" else self.i32(x.shape))
        return Instance("requant", {"out": out, "x": Tensor("i32", x)}, [("requant {out}, {x}" + text, 3)],
                        {"out": expected})

    def embed(self):
        dtype = self.r.choice(["u8", "i8"])
        vocab, e = self.r.randint(1, 40), self.r.randint(1, 12)
        b, j = self.r.randint(1, 4), self.r.randint(1, 6)
        table = Tensor(dtype, self.bytes_(dtype, (vocab, e)))
        tokens = Tensor(self.r.choice(["u8", "u16", "i32"]), self.np.integers(0, vocab, (b, j)))
        out = Tensor(dtype, self.bytes_(dtype, (b, j * e)))
        return Instance("embed", {"out": out, "table": table, "tokens": tokens},
                        [("embed {out}, {table}, {tokens}", 1)],
                        {"out": px.embed(table.values, tokens.values)})

    def argmax(self):
        dtype = self.r.choice(["u8", "i8", "u16", "i32"])
        rows, cols = self.shape(6, 300)
        if dtype == "i32":
            x = self.i32((rows, cols), self.r.choice(["full", "extreme", "small"]))
        elif dtype == "u16":
            x = self.np.integers(0, self.r.choice([3, 65536]), (rows, cols))
        else:
            x = self.bytes_(dtype, (rows, cols))
        out_dtype = self.r.choice(["u16", "i32"])
        out = Tensor(out_dtype, self.np.integers(0, 65536, (rows, 1)))
        return Instance("argmax", {"out": out, "x": Tensor(dtype, x)}, [("argmax {out}, {x}", 1)],
                        {"out": px.argmax(x)})

    def full_cache(self):
        """attend over 1024 positions of equal keys (e = 2^14 each) and equal values: |sum e v| is
        2^31 for -128."""
        out = []
        for value in [-128, 127]:
            inst = self.attend_instance(1, 4, 1, 1024, 2, "uniform", (2**32 - 1, 0))
            t = inst.tensors
            t["cache"].values[:] = value
            t["where"].values[:] = [[0, 1023], [0, 1022]]
            inst.results = {"out": px.attend(t["q"].values, t["cache"].values, t["where"].values,
                                             1, 2**32 - 1, 0)}
            out.append(inst)
        return out

    def wide(self):
        """The bounds of one row: rmsnorm over 32768 columns of +-(2^24 - 1) (a sum of squares just
        below 2^63), attend over heads of 32767 and 16383 (scores up to 2^29, distances near 2^30
        times multipliers near 2^32; a head of 32768 would need a cache of 65536 columns)."""
        out = []
        for fill in [px.RMSNORM_LIMIT, px.INT32_MIN, None]:
            x = self.rmsnorm_values(2, 32768)
            if fill is not None:  # row 0 all fill, row 1 alternating signs
                x[0], x[1] = fill, np.clip(fill * np.resize([1, -1], 32768), px.INT32_MIN, px.INT32_MAX)
            for gain, shift in [self.rmsnorm_gain(32768), (px.INT32_MAX, 17), (px.INT32_MIN, 62)][:2 + (fill is None)]:
                out.append(self.rmsnorm_instance(x, np.full((1, 32768), gain), shift))
        # matmul over K = 65535 (the most columns): u8 sums up to 65025 K, past 2^31 (wraps)
        for dtype, fill in [("u8", 255), ("i8", -128)]:
            a = np.full((1, 65535), fill)
            b = np.concatenate([a, self.bytes_(dtype, (1, 65535), "uniform")])
            out.append(Instance("matmul", {"c": Tensor("i32", self.i32((1, 2))), "a": Tensor(dtype, a),
                                           "b": Tensor(dtype, b)},
                                [("matmul {c}, {a}, {b}", 1)], {"c": px.matmul(a, b)}))
        # q row 0 all -128; keys: position 0 all -128, position 1 all 127, position 2 random
        for heads, multiplier, shift in [(1, 2**32 - 1, 0), (1, 2**32 - 1, 56), (1, 2**32 - 1, 55),
                                         (1, 1, 22), (2, 2**32 - 1, 56), (2, 3, 24)]:
            d = 32767 // heads * heads  # the largest: the cache's 2 d columns are at most 65535
            inst = self.attend_instance(heads, d // heads, 1, 3, 2, "uniform", (multiplier, shift))
            t = inst.tensors
            t["q"].values[0] = -128
            t["cache"].values[0, :d] = -128
            t["cache"].values[1, :d] = 127
            t["cache"].values[:, d:] = self.np.choice([-128, 127], (3, d))
            t["where"].values[:] = [[0, 2], [0, 1]]
            inst.results = {"out": px.attend(t["q"].values, t["cache"].values, t["where"].values,
                                             heads, multiplier, shift)}
            out.append(inst)
        return out

    def embed_fault(self):
        """An embed with a token id out of range (TOKEN_RANGE)."""
        inst = self.embed()
        tokens, vocab = inst.tensors["tokens"], inst.tensors["table"].rows
        high = {"u8": 255, "u16": 65535, "i32": px.INT32_MAX}[tokens.dtype]
        bad = self.r.choice([vocab, high] + ([-1, px.INT32_MIN] if tokens.dtype == "i32" else []))
        tokens.values.flat[self.r.randrange(tokens.values.size)] = bad
        try:
            px.embed(inst.tensors["table"].values, tokens.values)
        except px.PixelFault as fault:
            inst.fault, inst.results = fault, None
            return inst, f"embed: token id {bad} of a table of {vocab} rows"
        raise AssertionError(f"the model does not fault on embed with tokens {tokens.values.tolist()}")

    def fault(self):
        """A kvstore or attend whose where has a bad row, or an embed with a bad token id; returns
        the instance and what is wrong."""
        if self.r.random() < 0.2:
            return self.embed_fault()
        kind = self.r.choice(["kvstore", "attend"])
        slots, positions = self.r.randint(1, 3), self.r.choice([1, 2, 5])
        n = self.r.randint(1, min(slots * positions, 4))
        where = self.where_rows(n, slots, positions, True)
        wdtype = self.r.choice(["u16", "i32"])
        bad = self.r.choice(["slot", "position", "max"] + (["negative"] if wdtype == "i32" else []) +
                            (["repeat", "order"] if kind == "kvstore" and n > 1 else []))
        r = self.r.randrange(n)
        if bad == "slot":
            where[r, 0] = slots + self.r.choice([0, 0, 1, 100])
        elif bad == "position":
            where[r, 1] = positions + self.r.choice([0, 0, 1, 1000])
        elif bad == "max":
            where[r, self.r.randrange(2)] = 65535 if wdtype == "u16" else px.INT32_MAX
        elif bad == "negative":
            where[r, self.r.randrange(2)] = self.r.choice([-1, px.INT32_MIN])
        elif bad == "repeat":
            r = max(r, 1)
            where[r] = where[r - 1]
        else:
            r = max(r, 1)
            where[[r - 1, r]] = where[[r, r - 1]]
        if kind == "kvstore":
            d = self.r.choice([4, 8])
            cache = Tensor("i8", self.bytes_("i8", (positions, slots * d)))
            tensors = {"cache": cache, "rows": Tensor("i8", self.bytes_("i8", (n, d))),
                       "where": Tensor(wdtype, where)}
            ops, call = [("kvstore {cache}, {rows}, {where}", 1)], lambda: px.kvstore(
                cache.values, tensors["rows"].values, where)
        else:
            d = self.r.choice([1, 4, 6])
            tensors = {"q": Tensor("i8", self.bytes_("i8", (n, d))),
                       "cache": Tensor("i8", self.bytes_("i8", (positions, slots * 2 * d))),
                       "where": Tensor(wdtype, where), "out": Tensor("i8", self.bytes_("i8", (n, d)))}
            ops = [("attend {out}, {q}, {cache}, {where}, 1, 65536, 16", 3)]
            call = lambda: px.attend(tensors["q"].values, tensors["cache"].values, where, 1, 65536, 16)  # noqa: E731
        try:
            call()
        except px.PixelFault as fault:
            return Instance(kind, tensors, ops, fault=fault), f"{kind}: {bad} in where row {r}"
        raise AssertionError(f"the model does not fault on {kind} with where {where.tolist()}")


# ---- Running and comparing ---------------------------------------------------------------------

def run(tools, program, work):
    """Assembles and runs a program on the reference; returns (exit status, result image H x 4W)."""
    src, pxi, png = (work / f"{program.name}{ext}" for ext in (".pxs", ".pxi", ".png"))
    src.write_text(program.source())
    asm = subprocess.run([tools / "pxc", "asm", src, "-o", pxi], capture_output=True, text=True)
    if asm.returncode != 0 or "warning" in asm.stderr:
        sys.exit(f"{src}: pxc asm failed or warned:\n{asm.stderr}")
    ran = subprocess.run([tools / "pxrun", "--device", "cpu", pxi, "--out", png],
                         capture_output=True, text=True)
    if not png.exists():
        sys.exit(f"{pxi}: pxrun wrote no image (exit status {ran.returncode}):\n{ran.stderr}")
    image = read_png(png)
    assert image.shape == (program.h, program.w, 4)
    return ran.returncode, image.reshape(program.h, 4 * program.w), ran.stderr


def compare(program, actual, expected, before):
    """Every output tensor of every instance, then every other data byte. Returns the failures."""
    failures = []
    for n, inst in enumerate(program.instances):
        outputs = inst.results or {}
        if inst.fault or any(i.fault for i in program.instances[:n]):
            outputs = {}  # not run: its tensors keep their values (checked below with the rest)
        for name, want in outputs.items():
            got = inst.tensors[name].read(actual)
            diff = np.argwhere(got != np.asarray(want, np.int64))
            if diff.size:
                r, c = diff[0]
                failures.append(f"{program.name} instance {n} ({inst.kind}, pc {inst.pc}) {name}"
                                f"[{r}][{c}]: model {want[r][c]}, reference {got[r][c]}"
                                f" (and {len(diff) - 1} more elements differ)")
    diff = np.argwhere(actual[1:] != expected[1:])
    if diff.size and not failures:
        y, x = diff[0]
        failures.append(f"{program.name}: byte {x % 4} of pixel ({x // 4}, {y + 1}) is "
                        f"{actual[y + 1, x]}, expected {expected[y + 1, x]} (was {before[y + 1, x]}; "
                        f"{len(diff) - 1} more bytes differ)")
    return failures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default=os.environ.get("PXVM_BUILD", "build"),
                        help="the build directory (its cli/pxc and cli/pxrun run the programs)")
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--keep", help="write the programs and results here instead of a temporary directory")
    parser.add_argument("--verbose", "-v", action="store_true", help="a line per program")
    args = parser.parse_args(argv)
    tools = Path(args.build).resolve() / "cli"
    for tool in ("pxc", "pxrun"):
        if not (tools / tool).exists():
            sys.exit(f"no {tools / tool}: build first, or pass --build DIR")
    start = time.monotonic()

    # The table the model computes from its formula is the protocol's.
    header = (Path(__file__).resolve().parents[1] / "kernels/pxvm_attend_exp.h").read_text()
    values = header.split("#define PX_ATTEND_EXP_VALUES")[1].split("//")[0]
    table = [int(v) for v in re.findall(r"(\d+)u", values)]
    assert table == px.ATTEND_EXP.tolist(), "ATTEND_EXP differs from kernels/pxvm_attend_exp.h"

    gen = Gen(args.seed)
    makers = [gen.add] * 120 + [gen.lut] * 120 + [gen.rmsnorm] * 150 + [gen.kvstore] * 120 + \
             [gen.attend] * 200 + [gen.kvstore_attend] * 60 + \
             [gen.matmul] * 60 + [gen.requant] * 80 + [gen.embed] * 40 + [gen.argmax] * 40
    gen.r.shuffle(makers)
    programs = pack("valid", [make() for make in makers] + gen.full_cache(), 4096) + \
        pack("wide", gen.wide(), 32768)

    faults = []
    for n in range(20):
        before = [gen.r.choice([gen.add, gen.lut, gen.kvstore])() for _ in range(gen.r.choice([0, 2, 40, 60]))]
        bad, why = gen.fault()
        after = [gen.add(), gen.lut()]
        faults.append((Program(f"fault{n}", 1024, before + [bad] + after), bad, why))

    work_dir = tempfile.TemporaryDirectory(prefix="pxvm-int-") if not args.keep else None
    work = Path(args.keep or work_dir.name)
    work.mkdir(parents=True, exist_ok=True)
    failures, counts, elements = [], {}, 0
    for program in programs + [p for p, _, _ in faults]:
        before, expected = program.images()
        status, actual, stderr = run(tools, program, work)
        fault = next((i for i in program.instances if i.fault), None)
        failures += compare(program, actual, expected, before)
        want_pixel = [0, 0, 0, 0] if fault is None else [10, fault.pc & 255, fault.pc >> 8, 255]
        got_pixel = actual[0, -4:].tolist()
        if got_pixel != want_pixel or status != (0 if fault is None else 2):
            why = next(w for p, _, w in faults if p is program) if fault else ""
            failures.append(f"{program.name} {why}: exit status {status}, fault pixel {got_pixel}; "
                            f"expected {0 if fault is None else 2}, {want_pixel}\n{stderr}")
        if args.verbose:
            what = f"{next(w for p, _, w in faults if p is program)} at pc {fault.pc}" if fault else "no fault"
            print(f"{program.name}: {program.w}x{program.h}, {len(program.instances)} instances, {what}; "
                  f"exit status {status}, fault pixel {got_pixel}")
        for n, inst in enumerate(program.instances):
            if fault is not None and n >= program.instances.index(fault):
                break
            counts[inst.kind] = counts.get(inst.kind, 0) + 1
            elements += sum(np.size(v) for v in inst.results.values())

    for f in failures:
        print("FAIL", f)
    total = sum(counts.values())
    print(f"{total} instances compared ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}; "
          f"{elements} output elements) in {len(programs)} programs, and {len(faults)} TOKEN_RANGE "
          f"faults; {time.monotonic() - start:.1f} s")
    if work_dir:
        work_dir.cleanup()
    if failures:
        print(f"{len(failures)} failures: the model and the reference disagree")
        return 1
    print("the numpy model agrees with the reference")
    return 0


if __name__ == "__main__":
    sys.exit(main())
