#!/usr/bin/python3
"""Trains the decoder-only character transformer on the KJV corpus and saves it as safetensors.

The architecture is chosen to map onto pxVM's integer instructions (docs/PROTOCOL.md):
learned token and position embeddings (two `embed` lookups added into the residual stream),
pre-norm blocks of RMSNorm with a gain and no bias, causal softmax attention with heads of 64,
an MLP with GELU (a 256-entry lookup table in the integer model), no biases anywhere, a final
RMSNorm and an untied head. Loss on every position of a window.

Inputs and targets: a window of `context` ids predicts the same window shifted by one. The
first input of the held-out text is id 0 (the pad, "before the start of text").

  python3 model/train_transformer.py --device cuda --minutes 6.5 --out /tmp/kjv-transformer
  python3 model/train_transformer.py --device cpu --layers 2 --dim 64 --heads 1 --steps 200 --out /tmp/t
"""
import argparse
import json
import math
import os
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kjv  # noqa: E402
import safetensors_io  # noqa: E402

EPS = 1e-5  # RMSNorm's epsilon in the float model


class RMSNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + EPS)).type_as(x) * self.weight


class Block(nn.Module):
    def __init__(self, d, heads, hidden, dropout):
        super().__init__()
        self.heads = heads
        self.attn_norm = RMSNorm(d)
        self.wq = nn.Linear(d, d, bias=False)
        self.wk = nn.Linear(d, d, bias=False)
        self.wv = nn.Linear(d, d, bias=False)
        self.wo = nn.Linear(d, d, bias=False)
        self.mlp_norm = RMSNorm(d)
        self.up = nn.Linear(d, hidden, bias=False)
        self.down = nn.Linear(hidden, d, bias=False)
        self.dropout = dropout

    def attend(self, x):
        B, T, d = x.shape
        h = self.heads
        q, k, v = (w(x).view(B, T, h, d // h).transpose(1, 2) for w in (self.wq, self.wk, self.wv))
        p = self.dropout if self.training else 0.0
        if hasattr(F, "scaled_dot_product_attention"):
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        else:  # torch < 2.0 (Debian 12's 1.13)
            s = (q @ k.transpose(-2, -1)) / math.sqrt(d // h)
            s = s.masked_fill(torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1), float("-inf"))
            y = F.dropout(s.softmax(-1), p) @ v
        return self.wo(y.transpose(1, 2).reshape(B, T, d))

    def forward(self, x):
        x = x + F.dropout(self.attend(self.attn_norm(x)), self.dropout, self.training)
        y = self.down(F.gelu(self.up(self.mlp_norm(x))))
        return x + F.dropout(y, self.dropout, self.training)


class Transformer(nn.Module):
    def __init__(self, V, context, d, layers, heads, hidden, dropout):
        super().__init__()
        self.context = context
        self.tok_embed = nn.Embedding(V, d)
        self.pos_embed = nn.Embedding(context, d)
        self.layers = nn.ModuleList(Block(d, heads, hidden, dropout) for _ in range(layers))
        self.norm = RMSNorm(d)
        self.head = nn.Linear(d, V, bias=False)
        self.dropout = dropout
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * layers) if name.endswith(("wo.weight", "down.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, ids):
        T = ids.shape[1]
        x = self.tok_embed(ids) + self.pos_embed(torch.arange(T, device=ids.device))
        x = F.dropout(x, self.dropout, self.training)
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x))


def batches(ids, context, batch, generator):
    """Random windows of the training split: inputs [batch, context], targets shifted by one."""
    starts = torch.randint(0, len(ids) - context - 1, (batch,), generator=generator)
    offsets = torch.arange(context + 1)
    w = ids[starts[:, None] + offsets]
    return w[:, :-1], w[:, 1:]


@torch.no_grad()
def score(model, ids, context, stride, device, batch=256):
    """(accuracy, nats/char) over every position of ids. Windows of `context` inputs start every
    `stride` targets; each target is scored once, in the first window that holds it at a position
    >= context - stride (or anywhere in the first window). Input -1 is the pad."""
    model.eval()
    padded = torch.cat([torch.tensor([kjv.PAD]), ids.cpu()])
    n = len(ids)
    starts = list(range(0, max(n - context, 0) + stride, stride))
    correct, nats, counted = 0, 0.0, 0
    for b in range(0, len(starts), batch):
        group = starts[b:b + batch]
        x = torch.full((len(group), context), kjv.PAD, dtype=torch.int64)
        y = torch.full((len(group), context), -1, dtype=torch.int64)
        for r, s in enumerate(group):
            m = min(context, n - s)
            x[r, :m] = padded[s:s + m]
            first = 0 if s == 0 else context - stride
            y[r, first:m] = ids[s + first:s + m].cpu()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(x.to(device)).float()
        y = y.to(device)
        keep = y >= 0
        correct += (logits.argmax(-1)[keep] == y[keep]).sum().item()
        nats += F.cross_entropy(logits[keep], y[keep], reduction="sum").item()
        counted += keep.sum().item()
    model.train()
    assert counted == n, (counted, n)
    return correct / n, nats / n


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--context", type=int, default=256)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--heads", type=int, default=6)
    p.add_argument("--hidden", type=int, help="MLP width (default 4 x dim)")
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=6000, help="optimizer steps (the cosine's length)")
    p.add_argument("--minutes", type=float, help="also stop at this wall time (the cosine then follows the clock)")
    p.add_argument("--lr", type=float, default=1.5e-3)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--dtype", choices=["F32", "F16"], default="F32", help="dtype of the saved weights")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    hidden = args.hidden or 4 * args.dim
    command = shlex.join(["python3", "model/train_transformer.py"] + (sys.argv[1:] if argv is None else list(argv)))

    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    corpus = kjv.Corpus()
    # The last 1% of the training split chooses the checkpoint; the held-out 10% is never seen.
    cut = len(corpus.train) * 99 // 100
    train_ids, val_ids = corpus.train[:cut], corpus.train[cut:]
    model = Transformer(corpus.V, args.context, args.dim, args.layers, args.heads, hidden, args.dropout).to(device)
    params = sum(t.numel() for t in model.parameters())
    print(f"{command}\nV {corpus.V}  context {args.context}  d {args.dim}  layers {args.layers}  heads {args.heads}"
          f"  hidden {hidden}  {params:,} parameters  on {torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}",
          flush=True)
    decay = [p_ for p_ in model.parameters() if p_.dim() == 2]
    other = [p_ for p_ in model.parameters() if p_.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": other, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.99),
                            **({"fused": True} if device.type == "cuda" else {}))
    step_model = torch.compile(model) if args.compile else model
    gen = torch.Generator().manual_seed(args.seed)
    train_dev = train_ids.to(device)
    budget = args.minutes * 60 if args.minutes else math.inf
    start = last_log = time.time()
    best, best_state, history, step = math.inf, None, [], 0
    loss_sum, loss_n = torch.zeros((), device=device), 0

    def validate():
        nonlocal best, best_state
        acc, ce = score(model, val_ids, args.context, args.context // 2, device)
        history.append({"step": step, "seconds": round(time.time() - start, 1), "val_accuracy": acc, "val_nats": ce})
        if ce < best:
            best, best_state = ce, {k: v.detach().clone() for k, v in model.state_dict().items()}
        return acc, ce

    while True:
        progress = max(step / args.steps, (time.time() - start) / budget)
        if progress >= 1:
            break
        lr = args.lr * min(1.0, (step + 1) / args.warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = batches(train_dev, args.context, args.batch, gen) if device.type == "cpu" else \
            (t.to(device, non_blocking=True) for t in batches(train_ids, args.context, args.batch, gen))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = step_model(x)
        loss = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss_sum += loss.detach()
        loss_n += 1
        step += 1
        now = time.time()
        if now - last_log >= 30 or step == 1:
            acc, ce = validate()
            print(f"step {step:6d}  {now - start:6.1f} s  lr {lr:.2e}  train {loss_sum.item() / loss_n:.4f}"
                  f"  val {ce:.4f} nats {acc:.4f}", flush=True)
            loss_sum.zero_()
            loss_n, last_log = 0, now
    train_seconds = time.time() - start
    validate()
    model.load_state_dict(best_state)
    results = {}
    for name, stride in (("chunked", args.context), ("sliding", args.context // 2)):
        acc, ce = score(model, corpus.heldout, args.context, stride, device)
        results[name] = {"accuracy": acc, "nats": ce}
        print(f"held-out ({name} windows, stride {stride}): accuracy {acc:.4f}  cross-entropy {ce:.4f} nats", flush=True)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = {"context": args.context, "dim": args.dim, "layers": args.layers, "heads": args.heads,
              "hidden": hidden, "norm": "rmsnorm", "norm_eps": EPS, "activation": "gelu", "positions": "learned",
              "bias": False}
    metadata = {"format": "pxvm-transformer", "config": json.dumps(config), "vocab": json.dumps(corpus.vocab),
                "corpus": kjv.CORPUS, "corpus_sha256": corpus.sha256, "heldout_split": kjv.HELDOUT,
                "heldout": json.dumps(results), "trained_on": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                "command": command}
    dtype = np.float16 if args.dtype == "F16" else np.float32
    tensors = {k: v.detach().float().cpu().numpy().astype(dtype) for k, v in model.state_dict().items()}
    safetensors_io.write(out / "model.safetensors", tensors, metadata)
    metrics = {"config": config, "vocab_size": corpus.V, "parameters": params, "steps": step,
               "train_seconds": train_seconds, "tokens_seen": step * args.batch * args.context,
               "heldout": results, "best_val_nats": best, "history": history, "batch": args.batch,
               "lr": args.lr, "seed": args.seed, "dropout": args.dropout, "saved_dtype": args.dtype,
               "trained_on": metadata["trained_on"], "torch": torch.__version__, "command": command}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"wrote {out / 'model.safetensors'} and {out / 'metrics.json'}")


if __name__ == "__main__":
    main()
