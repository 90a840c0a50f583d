#!/usr/bin/env python3
"""The PyTorch peer of `pxbench cartridge`: the same window MLP in float32 on the same GPU, eager,
torch.compile, and torch.compile(mode="reduce-overhead") (CUDA graphs), at the same batch sizes.

One step is what a pxVM step is: the windows' token ids in, the next token of each window out,
argmax included. Two figures per step:
  gpu_ms  CUDA events around the forward pass and argmax, inputs already on the GPU;
  e2e_ms  host wall time from the ids in host memory to the answers in host memory
          (copy in, forward, argmax, copy out: what pxVM's "step" measures).

Usage: cartridge_peer.py WEIGHTS.safetensors [--batches 1 64 4096 32000] [--json FILE]
"""
import argparse
import json
import statistics
import struct
import sys
import time
from pathlib import Path

import torch


def read_safetensors(path):
    """F32 tensors and metadata (no numpy: the GPU machine's Python may lack it)."""
    data = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    body = bytearray(data[8 + n:])
    tensors = {}
    for name, info in header.items():
        assert info["dtype"] == "F32", f"{name}: {info['dtype']}"
        begin, end = info["data_offsets"]
        tensors[name] = torch.frombuffer(body[begin:end], dtype=torch.float32).reshape(info["shape"])
    return tensors, meta


def build(weights, device):
    w = {k: v.float().to(device) for k, v in weights.items()}
    hidden = sorted(int(k[2:-7]) for k in w if k.startswith("fc") and k.endswith(".weight"))
    layers = [(w[f"fc{i}.weight"], w[f"fc{i}.bias"]) for i in hidden]

    def forward(ids):
        x = w["embed.weight"][ids].flatten(1)
        for weight, bias in layers:
            x = torch.relu(torch.addmm(bias, x, weight.t()))
        logits = torch.addmm(w["out.bias"], x, w["out.weight"].t())
        return logits.argmax(1)

    return forward


def median_ms(fn, warmup_s=0.5, seconds=1.0, events=True):
    end = time.perf_counter() + warmup_s
    while time.perf_counter() < end:
        fn()
    torch.cuda.synchronize()
    out = []
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop or len(out) < 10:
        if events:
            a = torch.cuda.Event(enable_timing=True)
            b = torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            out.append(a.elapsed_time(b))
        else:
            t = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t) * 1e3)
    return statistics.median(out), len(out)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("weights")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 64, 4096, 32000])
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--json")
    a = p.parse_args()
    tensors, meta = read_safetensors(a.weights)
    context, vocab = int(meta["context"]), len(json.loads(meta["vocab"]))
    dev = torch.device("cuda")
    eager = build(tensors, dev)
    modes = {"eager": eager}
    try:
        modes["compiled"] = torch.compile(eager)
        modes["cuda_graphs"] = torch.compile(eager, mode="reduce-overhead")
    except Exception as e:  # noqa: BLE001 - report and go on with eager
        print(f"torch.compile unavailable: {e}", file=sys.stderr)
    results = []
    for batch in a.batches:
        g = torch.Generator().manual_seed(batch)
        host = torch.randint(1, vocab, (batch, context), generator=g).pin_memory()
        ids = host.to(dev)
        row = {"batch": batch}
        for name, fn in modes.items():
            try:
                gpu, n = median_ms(lambda: fn(ids), seconds=a.seconds)
                e2e, _ = median_ms(lambda: fn(host.to(dev, non_blocking=True)).cpu(),
                                   seconds=a.seconds, events=False)
            except Exception as e:  # noqa: BLE001
                row[name] = {"error": str(e).splitlines()[0]}
                continue
            row[name] = {"gpu_ms": gpu, "e2e_ms": e2e, "samples": n,
                         "tokens_per_s_e2e": batch * 1e3 / e2e}
            print(f"batch {batch:6d} {name:12s} gpu {gpu:8.4f} ms  e2e {e2e:8.4f} ms  "
                  f"{batch * 1e3 / e2e:12.0f} tokens/s", flush=True)
        results.append(row)
    out = {"schema": "cartridge-peer-1", "torch": torch.__version__,
           "device": torch.cuda.get_device_name(), "weights": a.weights, "results": results}
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
