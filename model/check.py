#!/usr/bin/python3
"""Checks a trained model.safetensors: the layout parsed by hand (8-byte length
+ JSON, no helper), the reader's tensors against it, the metadata, and the
float reference forward() on the held-out windows against the recorded figures.

  /usr/bin/python3 model/check.py /tmp/kjv_cpu/model.safetensors
"""
import json
import struct
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kjv  # noqa: E402
import safetensors_io  # noqa: E402
import train  # noqa: E402


def main(path):
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    assert n % 8 == 0 and len(raw) == 8 + n + max(v["data_offsets"][1] for k, v in header.items() if k != "__metadata__")
    meta = header["__metadata__"]
    assert meta["format"] == "pxvm-window-mlp" and all(isinstance(v, str) for v in meta.values())

    tensors, metadata = safetensors_io.read(path)
    assert metadata == meta and list(tensors) == [k for k in header if k != "__metadata__"]
    for name, a in tensors.items():
        begin, end = header[name]["data_offsets"]
        assert header[name]["dtype"] == "F32" and list(a.shape) == header[name]["shape"]
        assert np.array_equal(a, np.frombuffer(raw[8 + n + begin:8 + n + end], "<f4").reshape(a.shape))
    print(f"{path}: header {n} bytes, {len(tensors)} tensors "
          + ", ".join(f"{k} {list(v.shape)}" for k, v in tensors.items()))

    corpus = kjv.Corpus()
    k, vocab = int(meta["context"]), json.loads(meta["vocab"])
    assert vocab == corpus.vocab and meta["corpus_sha256"] == corpus.sha256
    ctx, y = (t.numpy() for t in kjv.windows(corpus.heldout, k))
    correct, nats = 0, 0.0
    for s in range(0, len(y), 32768):
        logits = train.forward(tensors, ctx[s:s + 32768]).astype(np.float64)
        logits -= logits.max(1, keepdims=True)
        logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
        correct += (logits.argmax(1) == y[s:s + 32768]).sum()
        nats -= logp[np.arange(len(logp)), y[s:s + 32768]].sum()
    acc, ce = correct / len(y), nats / len(y)
    print(f"reference forward: held-out accuracy {acc:.6f} (recorded {meta['heldout_accuracy']}), "
          f"cross-entropy {ce:.6f} (recorded {meta['heldout_cross_entropy']})")
    assert abs(acc - float(meta["heldout_accuracy"])) < 1e-4 and abs(ce - float(meta["heldout_cross_entropy"])) < 1e-4


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "model.safetensors")
