#!/usr/bin/python3
"""Held-out accuracy and cross-entropy of the baselines the window MLP is measured against.

(a) character n-gram count models, n = 1..4, trained on the train split;
(b) the "seed shape": 16 embeddings (E=128) mean-pooled, one hidden layer of
    128 + ReLU, logits, trained for --minutes.
Same split, vocabulary and windows (PAD before the start of each split) as train.py.

  /usr/bin/python3 model/baselines.py --minutes 2 --json /tmp/baselines.json
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kjv  # noqa: E402
import train  # noqa: E402


def context_codes(ids, n, V):
    """The n-1 ids before each position as one base-V integer (PAD is a symbol)."""
    if n == 1:
        return np.zeros(len(ids), dtype=np.int64)
    ctx, _ = kjv.windows(ids, n - 1)
    return ctx.numpy() @ (V ** np.arange(n - 2, -1, -1, dtype=np.int64))


def ngrams(corpus, max_n=4):
    """Accuracy: the most frequent next character after the longest context of
    at most n-1 characters that the train split has seen (the unigram always has).

    Cross-entropy: interpolated absolute discounting (Ney, Essen & Kneser 1994),
        p_n(w|h) = (max(c(h,w) - D_n, 0) + D_n * N1+(h) * p_{n-1}(w|h')) / c(h)
    with h' the h less its oldest character, N1+(h) the number of distinct
    characters seen after h, D_n = n1 / (n1 + 2 n2) from the counts of n-grams
    seen once and twice, p_{n-1} alone where c(h) = 0, and p_0 uniform over the
    V-1 characters. Each p_n sums to 1 and is never 0 for a character."""
    V = corpus.V
    y_train, y = corpus.train.numpy(), corpus.heldout.numpy()
    p = np.full(len(y), 1.0 / (V - 1))
    pred = None
    rows = []
    for n in range(1, max_n + 1):
        counts = np.bincount(context_codes(corpus.train, n, V) * V + y_train,
                             minlength=V ** n).reshape(-1, V)
        seen = np.bincount(counts.ravel(), minlength=3)
        D = seen[1] / (seen[1] + 2 * seen[2])
        h = context_codes(corpus.heldout, n, V)
        c, total, types = counts[h, y], counts.sum(1)[h], (counts > 0).sum(1)[h]
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.where(total > 0, (np.maximum(c - D, 0) + D * types * p) / total, p)
        best = counts.argmax(1)[h]
        pred = best if pred is None else np.where(total > 0, best, pred)
        rows.append({"model": f"{n}-gram", "heldout_accuracy": float((pred == y).mean()),
                     "heldout_cross_entropy": float(-np.log(p).mean()), "discount": float(D)})
    return rows


class SeedShape(nn.Module):
    """Mean of the context's embeddings -> Linear+ReLU -> Linear: ignores order."""

    def __init__(self, V, E=128, H=128):
        super().__init__()
        self.embed = nn.Embedding(V, E)
        self.fc1 = nn.Linear(E, H)
        self.out = nn.Linear(H, V)

    def forward(self, ctx):
        return train.dense(F.relu(train.dense(self.embed(ctx).mean(1), self.fc1)), self.out)


def seed_shape(corpus, args):
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    ctx, tgt = kjv.windows(corpus.train.to(device), 16)
    model = SeedShape(corpus.V).to(device)
    stats = train.fit(model, ctx, tgt, epochs=args.epochs, batch=args.batch, lr=args.lr,
                      minutes=args.minutes, seed=args.seed, log=lambda s: print(s, file=sys.stderr, flush=True))
    acc, ce = train.evaluate(model, *kjv.windows(corpus.heldout.to(device), 16))
    return {"model": "seed shape (mean of 16, E128, H128)", "heldout_accuracy": acc,
            "heldout_cross_entropy": ce, "epochs": stats["epochs"], "train_seconds": stats["train_seconds"]}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=2, help="training time of the seed shape")
    p.add_argument("--epochs", type=int, default=10, help="at most, for the seed shape")
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-seed-shape", action="store_true", help="n-grams only")
    p.add_argument("--json", help="also write the rows to this file")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    corpus = kjv.Corpus()
    rows = ngrams(corpus)
    if not args.no_seed_shape:
        rows.append(seed_shape(corpus, args))
    print("| model | held-out accuracy | cross-entropy (nats) |\n|---|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {100 * r['heldout_accuracy']:.1f}% | {r['heldout_cross_entropy']:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"corpus_sha256": corpus.sha256, "heldout": kjv.HELDOUT,
                                               "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
