"""The KJV character corpus: text, fixed split, vocabulary and context windows.

Shared by train.py, baselines.py and anything that evaluates a cartridge, so
that all of them agree on the split and on the character ids.
"""
import hashlib
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
CORPUS = "assets/kjv/kjv.txt"  # written by model/corpus.sh, relative to REPO
PAD = 0  # id 0: "before the start of text", never a target
HELDOUT = "last 10% of characters"


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def make_vocab(text):
    """["", c1, c2, ...]: the distinct characters sorted by code point, id 0 the pad."""
    return [""] + sorted(set(text))


def encode(text, vocab):
    """Characters to ids as an int64 tensor, vectorised through the code points."""
    points = np.array([ord(c) for c in vocab[1:]], dtype=np.uint32)
    codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    pos = np.minimum(np.searchsorted(points, codes), len(points) - 1)
    if not np.array_equal(points[pos], codes):
        raise ValueError("text has characters outside the vocabulary")
    return torch.from_numpy(pos.astype(np.int64) + 1)


def decode(ids, vocab):
    return "".join(vocab[i] for i in ids)


class Corpus:
    """The whole text, its vocabulary and the fixed 90/10 split as id tensors."""

    def __init__(self, path=None):
        self.path = Path(path) if path else REPO / CORPUS
        if not self.path.exists():
            raise SystemExit(f"{self.path} is missing: run model/corpus.sh")
        self.text = self.path.read_text(encoding="utf-8")
        self.sha256 = sha256(self.path)
        self.vocab = make_vocab(self.text)
        ids = encode(self.text, self.vocab)
        cut = len(self.text) * 9 // 10  # floor(0.9 * len)
        self.train, self.heldout = ids[:cut], ids[cut:]

    @property
    def V(self):
        return len(self.vocab)


def windows(ids, k):
    """(contexts [n, k], targets [n]) for every position of ids.

    Row i holds the k ids before position i, oldest first, left-padded with PAD
    where i < k, so a text is windowed on its own (the held-out split pads
    before its own start). The contexts are an unfold view of the padded ids:
    no copy is made until rows are indexed, e.g. contexts[batch_indices].
    """
    padded = torch.cat([torch.full((k,), PAD, dtype=torch.int64, device=ids.device), ids])
    return padded.unfold(0, k, 1)[: len(ids)], ids
