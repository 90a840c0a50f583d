#!/usr/bin/python3
"""The PyTorch peer of the transformer cartridge: the same float model (model/transformer/) with a
KV cache, greedy, end to end from host ids to host ids as pxrun measures (each step's ids go to
the device, the next ids come back), eager and with torch.compile (CUDA graphs, "reduce-overhead",
where it runs). The prompt is fed a token a step, as the cartridge does.

  python3 benchmarks/peers/transformer_peer.py --batches 1 64 --tokens 200 --json peer.json
"""
import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "model"))
import safetensors_io  # noqa: E402


class Model:
    """The weights as tensors, and one decoding step over a static KV cache (positions > p masked, so
    every step has the same shapes and CUDA graphs can replay it)."""

    def __init__(self, path, device, dtype):
        tensors, meta = safetensors_io.read(path)
        self.c = json.loads(meta["config"])
        self.vocab = json.loads(meta["vocab"])
        self.w = {k: torch.from_numpy(v.astype(np.float32)).to(device, dtype) for k, v in tensors.items()}
        self.device, self.dtype = device, dtype

    def norm(self, x, g):
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.c["norm_eps"])).to(x.dtype) * g

    def new_cache(self, batch):
        L, H, T, d = self.c["layers"], self.c["heads"], self.c["context"], self.c["dim"]
        return torch.zeros(L, 2, batch, H, T, d // H, device=self.device, dtype=self.dtype)

    def step(self, ids, pos, cache):
        """ids [B] (long, on the device), pos [B] (long): the next ids [B]; cache updated in place."""
        w, c = self.w, self.c
        B, d, H, T = ids.shape[0], c["dim"], c["heads"], c["context"]
        hd = d // H
        x = w["tok_embed.weight"][ids] + w["pos_embed.weight"][pos]
        rows = torch.arange(B, device=ids.device)
        mask = torch.arange(T, device=ids.device)[None, :] <= pos[:, None]  # B x T
        for i in range(c["layers"]):
            p = f"layers.{i}."
            h = self.norm(x, w[p + "attn_norm.weight"])
            q, k, v = (h @ w[p + n + ".weight"].T for n in ("wq", "wk", "wv"))
            cache[i, 0, rows, :, pos] = k.view(B, H, hd)
            cache[i, 1, rows, :, pos] = v.view(B, H, hd)
            s = torch.einsum("bhd,bhtd->bht", q.view(B, H, hd), cache[i, 0]) / math.sqrt(hd)
            s = s.masked_fill(~mask[:, None, :], float("-inf")).float().softmax(-1).to(x.dtype)
            y = torch.einsum("bht,bhtd->bhd", s, cache[i, 1]).reshape(B, d)
            x = x + y @ w[p + "wo.weight"].T
            h = self.norm(x, w[p + "mlp_norm.weight"])
            x = x + F.gelu(h @ w[p + "up.weight"].T) @ w[p + "down.weight"].T
        return (self.norm(x, w["norm.weight"]) @ w["head.weight"].T).argmax(-1)


def generate(model, step, prompt_ids, batch, tokens):
    """Greedy: the prompt a token a step, then `tokens` answers; ids cross host <-> device each step.
    Returns (seconds, the first row's generated ids)."""
    cache = model.new_cache(batch)
    history = list(prompt_ids)
    made = []
    sync = torch.cuda.synchronize if model.device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    steps = len(prompt_ids) - 1 + tokens
    for s in range(steps):
        ids = torch.tensor([history[s]] * batch, dtype=torch.long).to(model.device, non_blocking=True)
        pos = torch.full((batch,), s, dtype=torch.long).to(model.device, non_blocking=True)
        nxt = step(ids, pos, cache).cpu()  # the answer on the host, as pxrun reads it
        if s >= len(prompt_ids) - 1:
            history.append(int(nxt[0]))
            made.append(int(nxt[0]))
    sync()
    return time.perf_counter() - start, made


def main():
    a = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("--weights", default=str(ROOT / "model/transformer/model.safetensors"))
    a.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    a.add_argument("--tokens", type=int, default=200)
    a.add_argument("--prompt", default="And God said")
    a.add_argument("--dtype", choices=["float16", "float32"], default="float16")
    a.add_argument("--no-compile", action="store_true")
    a.add_argument("--json")
    args = a.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = Model(args.weights, device, getattr(torch, args.dtype))
    index = {ch: i for i, ch in enumerate(model.vocab) if ch}
    prompt = [index[ch] for ch in args.prompt]
    steps = len(prompt) - 1 + args.tokens
    modes = [("eager", model.step)]
    if not args.no_compile and device.type == "cuda":
        modes.append(("torch.compile reduce-overhead",
                      torch.compile(model.step, mode="reduce-overhead", fullgraph=True)))
    rows = []
    for name, step in modes:
        for batch in args.batches:
            try:
                generate(model, step, prompt, batch, 8)  # warm-up (and compilation)
                seconds, made = generate(model, step, prompt, batch, args.tokens)
            except Exception as e:  # noqa: BLE001 - report and go on
                print(f"{name} batch {batch}: {type(e).__name__}: {e}", flush=True)
                continue
            row = {"mode": name, "batch": batch, "steps": steps, "seconds": seconds,
                   "ms_per_step": 1000 * seconds / steps, "tokens_per_s": batch * steps / seconds,
                   "text": "".join(model.vocab[i] for i in made[:60])}
            rows.append(row)
            print(f"{name:30s} batch {batch:5d}: {row['ms_per_step']:.3f} ms a step, "
                  f"{row['tokens_per_s']:.0f} tokens/s  {row['text'][:40]!r}", flush=True)
    out = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
           "torch": torch.__version__, "dtype": args.dtype, "prompt": args.prompt, "results": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
