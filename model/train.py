#!/usr/bin/python3
"""Trains the window MLP character model on the KJV corpus and saves it as safetensors.

The model: the k characters before position i (oldest first, PAD before the
start of text) -> embedding [V, E] each -> concatenated k*E vector -> n layers
of Linear+ReLU -> Linear to V logits for the character at i. Only embedding
lookups, matrix products, bias adds and ReLU, all of which the int8
cartridge can compute; forward() below is the float reference it is checked
against.

  /usr/bin/python3 model/train.py --device cpu --minutes 3 --out /tmp/kjv_cpu
"""
import argparse
import json
import math
import os
import platform
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kjv  # noqa: E402
import safetensors_io  # noqa: E402


def dense(x, layer):
    """layer(x). On the CPU as a 1x1 convolution: Debian's torch links the netlib
    reference BLAS (~5 GFLOPS on 2 cores) while convolutions go through oneDNN
    (~100 GFLOPS), a 20x faster training step."""
    if x.is_cuda:
        return layer(x)
    # The batch is the convolution's length: oneDNN's weight gradient is then one
    # reduction over it, 2.5x faster than with the batch as the minibatch.
    return F.conv1d(x.t()[None], layer.weight[:, :, None], layer.bias)[0].t()


class WindowMLP(nn.Module):
    def __init__(self, V, k, E, hidden):
        super().__init__()
        self.embed = nn.Embedding(V, E)
        sizes = [k * E] + list(hidden)
        self.hidden = len(hidden)
        for i in range(1, len(sizes)):  # registered as fc1..fcn: state_dict names are the file names
            self.add_module(f"fc{i}", nn.Linear(sizes[i - 1], sizes[i]))
        self.out = nn.Linear(sizes[-1], V)

    def forward(self, ctx):
        x = self.embed(ctx).flatten(1)  # [B, k, E] -> [B, k*E], position 0 first
        for i in range(1, self.hidden + 1):
            x = F.relu(dense(x, getattr(self, f"fc{i}")))
        return dense(x, self.out)


def forward(weights, windows):
    """Float32 numpy reference: weights {name: array} as in model.safetensors,
    windows [n, k] ids -> logits [n, V]."""
    w = {name: np.asarray(a, dtype=np.float32) for name, a in weights.items()}
    windows = np.asarray(windows)
    x = w["embed.weight"][windows].reshape(len(windows), -1)
    i = 1
    while f"fc{i}.weight" in w:
        x = np.maximum(x @ w[f"fc{i}.weight"].T + w[f"fc{i}.bias"], 0)
        i += 1
    return x @ w["out.weight"].T + w["out.bias"]


def fit(model, ctx, tgt, *, epochs, batch, lr, minutes=None, seed=1, log=print):
    """Adam with a cosine decay to 0 over whichever runs out first, the epochs
    or the wall-clock budget (so a --minutes run still ends annealed; it is then
    only as deterministic as the clock). Returns training statistics."""
    device = ctx.device
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n, per_epoch = len(tgt), math.ceil(len(tgt) / batch)
    total, budget = epochs * per_epoch, (minutes * 60 if minutes else math.inf)
    order = torch.Generator().manual_seed(seed)  # shuffles on the CPU: same order on any device
    step, seen, loss_sum, loss_steps = 0, 0, torch.zeros((), device=device), 0
    start = last_log = time.time()
    done = False
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=order).to(device)
        for b in range(per_epoch):
            now = time.time()
            progress = max(step / total, (now - start) / budget)
            if progress >= 1:
                done = True
                break
            for group in opt.param_groups:
                group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * progress))
            idx = perm[b * batch:(b + 1) * batch]
            loss = F.cross_entropy(model(ctx[idx]), tgt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach()
            step, seen, loss_steps = step + 1, seen + len(idx), loss_steps + 1
            if now - last_log >= 15:  # .item() syncs the GPU: only now and then
                log(f"epoch {seen / n:6.2f}  step {step:7d}  lr {group['lr']:.2e}  "
                    f"train loss {loss_sum.item() / loss_steps:.4f}  {seen / (now - start):,.0f} windows/s")
                loss_sum.zero_()
                last_log, loss_steps = now, 0
        if done:
            break
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.time() - start
    return {"steps": step, "epochs": seen / n, "train_windows": seen,
            "train_seconds": seconds, "windows_per_second": seen / seconds}


@torch.no_grad()
def evaluate(model, ctx, tgt, chunk=65536):
    """(argmax accuracy, mean cross-entropy in nats) over all windows."""
    model.eval()
    correct, nats = 0, 0.0
    for s in range(0, len(tgt), chunk):
        logits = model(ctx[s:s + chunk]).float()
        y = tgt[s:s + chunk]
        correct += (logits.argmax(1) == y).sum().item()
        nats += F.cross_entropy(logits, y, reduction="sum").item()
    model.train()
    return correct / len(tgt), nats / len(tgt)


def device_name(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return f"cpu ({line.split(':', 1)[1].strip()}, {torch.get_num_threads()} threads)"
    return f"cpu ({platform.processor() or platform.machine()})"


def parse_hidden(items):
    return [int(h) for item in items for h in item.split(",") if h]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--context", type=int, default=16, help="k, characters of context")
    p.add_argument("--embed", type=int, default=24, help="E, embedding width")
    p.add_argument("--hidden", nargs="+", default=["512"], help="hidden widths, e.g. 1024,1024 or 1024 1024")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--lr", type=float, default=2e-3, help="peak Adam learning rate")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--minutes", type=float, help="stop training after this wall time")
    p.add_argument("--threads", type=int, default=2, help="CPU threads for torch")
    p.add_argument("--corpus", help=f"default {kjv.CORPUS}")
    p.add_argument("--out", required=True, help="directory for model.safetensors and metrics.json")
    args = p.parse_args(argv)
    hidden = parse_hidden(args.hidden)
    command = shlex.join([sys.executable] + sys.argv if argv is None else ["train.py"] + list(argv))

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = torch.device(args.device)

    corpus = kjv.Corpus(args.corpus)
    k = args.context
    train_ctx, train_tgt = kjv.windows(corpus.train.to(device), k)
    held_ctx, held_tgt = kjv.windows(corpus.heldout.to(device), k)
    model = WindowMLP(corpus.V, k, args.embed, hidden).to(device)
    params = sum(t.numel() for t in model.parameters())
    print(f"{command}\nV {corpus.V}  k {k}  E {args.embed}  hidden {hidden}  {params:,} parameters  "
          f"{len(train_tgt):,} train / {len(held_tgt):,} held-out windows  on {device_name(device)}", flush=True)

    stats = fit(model, train_ctx, train_tgt, epochs=args.epochs, batch=args.batch, lr=args.lr,
                minutes=args.minutes, seed=args.seed, log=lambda s: print(s, flush=True))
    acc, ce = evaluate(model, held_ctx, held_tgt)
    print(f"held-out accuracy {acc:.4f}  cross-entropy {ce:.4f} nats  "
          f"({stats['epochs']:.2f} epochs, {stats['train_seconds']:.1f} s, "
          f"{stats['windows_per_second']:,.0f} windows/s)")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    metadata = {
        "format": "pxvm-window-mlp",
        "context": str(k),
        "vocab": json.dumps(corpus.vocab),
        "corpus": kjv.CORPUS,
        "corpus_sha256": corpus.sha256,
        "heldout": kjv.HELDOUT,
        "heldout_accuracy": f"{acc:.6f}",
        "heldout_cross_entropy": f"{ce:.6f}",
        "train_seconds": f"{stats['train_seconds']:.1f}",
        "hidden": json.dumps(hidden),
        "embed": str(args.embed),
        "trained_on": device_name(device),
    }
    tensors = {name: t.detach().cpu().float().numpy() for name, t in model.state_dict().items()}
    safetensors_io.write(out / "model.safetensors", tensors, metadata)
    metrics = {**{key: metadata[key] for key in ("format", "corpus", "corpus_sha256", "heldout", "trained_on")},
               "context": k, "embed": args.embed, "hidden": hidden, "vocab_size": corpus.V,
               "parameters": params, "heldout_accuracy": acc, "heldout_cross_entropy": ce,
               **stats, "batch": args.batch, "lr": args.lr, "seed": args.seed, "command": command}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"wrote {out / 'model.safetensors'} and {out / 'metrics.json'}")


if __name__ == "__main__":
    main()
