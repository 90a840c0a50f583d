#!/usr/bin/python3
"""Quantises the float character transformer (model/train_transformer.py) into pxVM's integer
transformer, calibrated on real text, and simulates the integer model exactly with the numpy model
of the instructions (model/pxvm_int.py), so every figure here is what a cartridge computes.

The integer model (docs/design/TRANSFORMER_ISA.md, "One layer as a program"):
  residual stream  x: i32 at one scale s_x, the embeddings stored as i32 tables at that scale
  rmsnorm          i8 out at a calibrated scale; gain[c] = round(g[c] sqrt(d) 2^shift / s_out)
  weights          i8, one scale per tensor: s_w = max|W| / 127
  q, k, v          i32 products requantised to i8 at calibrated scales
  attend           the table index is (m - s) q_scale k_scale / sqrt(hd) 16 nats^-1, as a u32
                   multiplier and a shift; its output has v's scale
  o, down          requantised to i32 at s_x, then `add`ed to the stream
  up               requantised to i8 at a calibrated scale, then GELU as a 256-entry lut into i8
  logits           i32 at s_h s_head (no requant): the cartridge's logits scale
Calibrated scales are the 99.99th percentile of |value| over windows of the calibration text
divided by 127 (by 2^23 for the stream), rounded to 6 significant digits so that the last bits of
a BLAS's sums never change a cartridge's bytes (model/rebuild_transformer.sh checks them).

  /usr/bin/python3 model/quantize_transformer.py /tmp/m/model.safetensors --out /tmp/m/int.safetensors
"""
import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pxvm_int as px  # noqa: E402
import safetensors_io  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CALIBRATION = REPO / "assets/kjv/calibration.txt"
HELDOUT = REPO / "assets/kjv/heldout.txt"
PERCENTILE = 99.99
STREAM_BITS = 23  # the stream's calibrated maximum maps to 2^23, below rmsnorm's 2^24 clamp


def erf(x):
    """erf to ~1e-7 (Abramowitz and Stegun 7.1.26 refined: 7.1.28 would do too); numpy has none."""
    # W. J. Cody's rational approximations would be exact to double precision; this one is
    # 1.5e-7, far below an i8 step of the GELU table.
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t
               + 0.254829592) * t * np.exp(-a * a)
    return s * y


def gelu(x):
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def load(path):
    tensors, meta = safetensors_io.read(path)
    config = json.loads(meta["config"])
    vocab = json.loads(meta["vocab"])
    weights = {k: v.astype(np.float64) for k, v in tensors.items()}
    return weights, config, vocab, meta


def encode(text, vocab):
    index = {c: i for i, c in enumerate(vocab) if c}
    return np.array([index[c] for c in text], np.int64)


class FloatModel:
    """The float model in numpy (float64), as train_transformer.py computes it in eval mode; records
    what calibration needs when `seen` is a dict."""

    def __init__(self, w, config):
        self.w, self.c = w, config
        self.d, self.heads, self.layers = config["dim"], config["heads"], config["layers"]

    def norm(self, x, g):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + self.c["norm_eps"]) * g

    def forward(self, ids, seen=None, softmax=None):
        """Logits of one window of ids (positions 0 ... len-1). softmax(scores) may replace the
        float softmax (rows of causal scores, already scaled by 1/sqrt(hd))."""
        w, d, H = self.w, self.d, self.heads
        hd = d // H
        T = len(ids)
        x = w["tok_embed.weight"][ids] + w["pos_embed.weight"][:T]
        record = (lambda k, v: seen.setdefault(k, []).append(np.abs(v).ravel())) if seen is not None \
            else (lambda k, v: None)
        record("stream", x)
        mask = np.triu(np.ones((T, T), bool), 1)
        for i in range(self.layers):
            p = f"layers.{i}."
            h = self.norm(x, w[p + "attn_norm.weight"])
            record(p + "attn_norm", h)
            q, k, v = (h @ w[p + n + ".weight"].T for n in ("wq", "wk", "wv"))
            for n, t in (("q", q), ("k", k), ("v", v)):
                record(p + n, t)
            qh, kh, vh = (t.reshape(T, H, hd).transpose(1, 0, 2) for t in (q, k, v))
            s = qh @ kh.transpose(0, 2, 1) / math.sqrt(hd)
            s = np.where(mask, -np.inf, s)
            if softmax is None:
                e = np.exp(s - s.max(-1, keepdims=True))
                a = e / e.sum(-1, keepdims=True)
            else:
                a = softmax(s)
            y = (a @ vh).transpose(1, 0, 2).reshape(T, d)
            x = x + y @ w[p + "wo.weight"].T
            record("stream", x)
            h = self.norm(x, w[p + "mlp_norm.weight"])
            record(p + "mlp_norm", h)
            u = h @ w[p + "up.weight"].T
            record(p + "up", u)
            x = x + gelu(u) @ w[p + "down.weight"].T
            record("stream", x)
        h = self.norm(x, w["norm.weight"])
        record("norm", h)
        return h @ w["head.weight"].T


def table_softmax(s):
    """Float softmax with pxVM's exponential table (1/16-nat steps, 2^14 scale) instead of exp."""
    m = np.max(np.where(np.isfinite(s), s, -np.inf), -1, keepdims=True)
    index = np.minimum(np.floor((m - s) * 16), 255)
    e = np.where(np.isfinite(s), px.ATTEND_EXP[np.nan_to_num(index, posinf=255).astype(np.int64)], 0)
    return e / e.sum(-1, keepdims=True)


def significant(x, digits=6):
    return float(f"{x:.{digits - 1}e}")


def fixed_point(real, bits=31, max_shift=62):
    """(multiplier, shift) with multiplier 2^-shift ~ real, multiplier in [2^(bits-1), 2^bits)."""
    mantissa, exponent = math.frexp(real)  # real = mantissa 2^exponent, mantissa in [0.5, 1)
    multiplier = round(mantissa * 2**bits)
    shift = bits - exponent
    if multiplier == 2**bits:
        multiplier //= 2
        shift -= 1
    while shift > max_shift:
        multiplier >>= 1
        shift -= 1
    if shift < 0:
        raise ValueError(f"scale {real} is too large for a fixed-point multiplier")
    return int(multiplier), int(shift)


def quantize_weight(W):
    s = max(np.abs(W).max(), 1e-12) / 127
    return np.clip(np.round(W / s), -127, 127).astype(np.int8), s


def quantize(w, config, vocab, calibration_ids, windows=64):
    """The integer model: its tensors (name -> integer array) and parameters (JSON-able), with the
    scales calibrated on `windows` windows of the calibration text."""
    model = FloatModel(w, config)
    T, d, H, L = config["context"], config["dim"], config["heads"], config["layers"]
    hd = d // H
    seen = {}
    step = max(1, (len(calibration_ids) - T) // windows)
    for start in range(0, len(calibration_ids) - T, step)[:windows]:
        model.forward(calibration_ids[start:start + T], seen)
    scale = {k: significant(np.percentile(np.concatenate(v), PERCENTILE) / 127) for k, v in seen.items()}
    s_x = significant(np.concatenate(seen["stream"]).max() / 2**STREAM_BITS)

    t, p = {}, {"s_x": s_x, "layers": []}

    def norm_gain(name, g, s_out):
        shift = 0
        top = np.abs(g).max() * math.sqrt(d) / s_out
        while shift < 62 and top * 2 ** (shift + 1) < 2**30:
            shift += 1
        t[name + ".gain"] = np.round(g * math.sqrt(d) * 2**shift / s_out).astype(np.int32)
        return shift

    t["tok_embed"] = np.round(w["tok_embed.weight"] / s_x).astype(np.int32)
    t["pos_embed"] = np.round(w["pos_embed.weight"] / s_x).astype(np.int32)
    s_u_all = []
    for i in range(L):
        pre = f"layers.{i}."
        lp = {}
        s_h = scale[pre + "attn_norm"]
        lp["attn_norm_shift"] = norm_gain(f"layers.{i}.attn_norm", w[pre + "attn_norm.weight"], s_h)
        qkv, s_qkv = [], {}
        for n in ("q", "k", "v"):
            wq, s_w = quantize_weight(w[pre + "w" + n + ".weight"])
            qkv.append(wq)
            s_qkv[n] = scale[pre + n]
            lp[n + "_requant"] = fixed_point(s_h * s_w / s_qkv[n])
        t[f"layers.{i}.wqkv"] = np.concatenate(qkv)
        lp["attend"] = fixed_point(s_qkv["q"] * s_qkv["k"] / math.sqrt(hd) * 16, bits=32)
        wo, s_wo = quantize_weight(w[pre + "wo.weight"])
        t[f"layers.{i}.wo"] = wo
        lp["o_requant"] = fixed_point(s_qkv["v"] * s_wo / s_x)
        s_h2 = scale[pre + "mlp_norm"]
        lp["mlp_norm_shift"] = norm_gain(f"layers.{i}.mlp_norm", w[pre + "mlp_norm.weight"], s_h2)
        wu, s_wu = quantize_weight(w[pre + "up.weight"])
        t[f"layers.{i}.up"] = wu
        s_u = scale[pre + "up"]
        s_u_all.append(s_u)
        lp["up_requant"] = fixed_point(s_h2 * s_wu / s_u)
        levels = gelu(np.arange(-128, 128) * s_u)
        s_g = np.abs(levels).max() / 127
        t[f"layers.{i}.gelu"] = np.clip(np.round(levels / s_g), -128, 127).astype(np.int8)
        wd, s_wd = quantize_weight(w[pre + "down.weight"])
        t[f"layers.{i}.down"] = wd
        lp["down_requant"] = fixed_point(s_g * s_wd / s_x)
        lp["scales"] = {"attn_norm": s_h, "q": s_qkv["q"], "k": s_qkv["k"], "v": s_qkv["v"],
                        "mlp_norm": s_h2, "up": s_u, "gelu": s_g}
        p["layers"].append(lp)
    s_hf = scale["norm"]
    p["norm_shift"] = norm_gain("norm", w["norm.weight"], s_hf)
    t["head"], s_head = quantize_weight(w["head.weight"])
    p["logits_scale"] = s_hf * s_head
    p["config"] = config
    return t, p


class IntegerModel:
    """The cartridge's arithmetic on one sequence: rows = its positions, one slot."""

    def __init__(self, t, p):
        self.t, self.p = t, p
        c = p["config"]
        self.d, self.H, self.L, self.T = c["dim"], c["heads"], c["layers"], c["context"]

    def forward(self, ids):
        t, p, d = self.t, self.p, self.d
        R = len(ids)
        where = np.stack([np.zeros(R, np.int64), np.arange(R)], 1)
        x = px.add(px.embed(t["tok_embed"], ids[:, None]), px.embed(t["pos_embed"], where[:, 1:]))
        for i, lp in enumerate(p["layers"]):
            pre = f"layers.{i}."
            h = px.rmsnorm(x, t[pre + "attn_norm.gain"], lp["attn_norm_shift"])
            acc = px.matmul(h, t[pre + "wqkv"])
            q, k, v = (px.requant(acc[:, j * d:(j + 1) * d], *lp[n + "_requant"], 0, "i8")
                       for j, n in enumerate(("q", "k", "v")))
            cache = px.kvstore(np.zeros((self.T, 2 * d), np.int8), np.concatenate([k, v], 1), where)
            a = px.attend(q, cache, where, self.H, *lp["attend"])
            x = px.add(x, px.requant(px.matmul(a, t[pre + "wo"]), *lp["o_requant"], 0, "i32"))
            h = px.rmsnorm(x, t[pre + "mlp_norm.gain"], lp["mlp_norm_shift"])
            u = px.requant(px.matmul(h, t[pre + "up"]), *lp["up_requant"], 0, "i8")
            g = px.lut(u, t[pre + "gelu"], signed=True)
            x = px.add(x, px.requant(px.matmul(g, t[pre + "down"]), *lp["down_requant"], 0, "i32"))
        h = px.rmsnorm(x, t["norm.gain"], p["norm_shift"])
        return px.matmul(h, t["head"])


def score(logits_of, ids, T, limit):
    """(accuracy, nats/char) over the first `limit` targets of ids, in windows of T starting at the
    pad (chunked: each target scored once, with 0 ... T-1 characters of context)."""
    ids = ids[:limit]
    correct, nats = 0, 0.0
    for start in range(0, len(ids), T):
        targets = ids[start:start + T]
        inputs = np.concatenate([[0] if start == 0 else ids[start - 1:start], targets[:-1]])
        z = logits_of(inputs).astype(np.float64)
        z = z - z.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        nats -= logp[np.arange(len(targets)), targets].sum()
        correct += (z.argmax(1) == targets).sum()
    return correct / len(ids), nats / len(ids)


def main(argv=None):
    a = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("weights", help="the float model (safetensors from train_transformer.py)")
    a.add_argument("--out", help="write the integer model here (safetensors)")
    a.add_argument("--windows", type=int, default=16, help="calibration windows")
    a.add_argument("--eval-chars", type=int, default=0,
                   help="held-out characters scored by the float model, the float model with the "
                        "table softmax and the integer model (0: none)")
    args = a.parse_args(argv)
    w, config, vocab, meta = load(args.weights)
    cal = encode(CALIBRATION.read_text(encoding="utf-8"), vocab)
    t, p = quantize(w, config, vocab, cal, args.windows)
    held = encode(HELDOUT.read_text(encoding="utf-8"), vocab)
    T = config["context"]
    f = FloatModel(w, config)
    im = IntegerModel(t, p)
    results = {} if not args.eval_chars else {
        "float": score(f.forward, held, T, args.eval_chars),
        "float, table softmax": score(lambda i: f.forward(i, softmax=table_softmax), held, T,
                                      args.eval_chars),
        "integer": score(lambda i: im.forward(i) * p["logits_scale"], held, T, args.eval_chars),
    }
    for name, (acc, nats) in results.items():
        print(f"{name:22s} accuracy {acc:.4f}  {nats:.4f} nats/char  ({args.eval_chars} held-out chars)")
    if results:
        p["evaluation"] = {k: {"accuracy": v[0], "nats": v[1], "chars": args.eval_chars}
                           for k, v in results.items()}
    if args.out:
        meta_out = {"format": "pxvm-transformer-int", "params": json.dumps(p), "vocab": meta["vocab"],
                    "float_model": json.dumps({k: v for k, v in meta.items() if k != "vocab"})}
        safetensors_io.write(args.out, t, meta_out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
