#!/usr/bin/env python3
"""The PyTorch peer of pxbench on an NVIDIA machine, writing pxbench's JSON schema (2), so that
`pxbench compare pxbench.json peer.json` sets them side by side. Workloads with pxbench's names:
cuBLASLt int8 matmul (torch._int_mm with B column-major, its fast layout; checked against an exact
int64 product on the CPU), int8 relu and a device copy of the same sizes. Timed with CUDA events
after a warm-up, one sample per run, until the relative standard deviation is under 2% or 2 s.

Usage: torch_peer.py [--json FILE] [--preset smoke|full]
"""
import argparse
import datetime
import json
import socket
import statistics
import time

import torch


def samples_ms(fn, warmup_s=0.5, target=0.02, min_samples=10, max_samples=200, limit_s=2.0):
    end = time.perf_counter() + warmup_s
    while time.perf_counter() < end:
        fn()
    torch.cuda.synchronize()
    out = []
    start = time.perf_counter()
    while True:
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        out.append(a.elapsed_time(b))
        if len(out) >= min_samples:
            med = statistics.median(out)
            if statistics.stdev(out) / med <= target:
                return out, True
            if time.perf_counter() - start >= limit_s or len(out) >= max_samples:
                return out, False


def stats(samples):
    med = statistics.median(samples)
    sd = statistics.stdev(samples) if len(samples) > 1 else 0.0
    return {"median": med, "min": min(samples), "max": max(samples),
            "mean": statistics.fmean(samples), "stddev": sd,
            "relative_stddev": sd / med if med else 0.0, "samples": samples}


def result(device, workload, variant, ops, bytes_, fn):
    s, converged = samples_ms(fn)
    st = stats(s)
    ms = st["median"]
    r = {"device": device, "workload": workload, "path": "peer", "variant": variant,
         "ops": ops, "bytes": bytes_, "gpu_ms": st, "converged": converged,
         "tops": ops / ms / 1e9 if workload.startswith("matmul") else None,
         "gbps": bytes_ / ms / 1e6 if bytes_ and not workload.startswith("matmul") else None,
         "verified": False, "error": ""}
    figure = f"{r['tops']:.1f} TOPS" if r["tops"] else (f"{r['gbps']:.0f} GB/s" if r["gbps"] else "")
    print(f"{workload:<36} {variant:<36} {ms:10.4f} ms {figure}", flush=True)
    return r


def matmul(device, m, n, k):
    a = torch.randint(-128, 128, (m, k), dtype=torch.int8, device="cuda")
    b = torch.randint(-128, 128, (n, k), dtype=torch.int8, device="cuda")
    bt = b.t()  # (k, n), column-major: cuBLASLt's fast int8 layout
    c = torch._int_mm(a, bt)
    # The same C = A . B^T as pxVM computes, exactly: checked on a few rows against int64.
    ref = (a[:4].cpu().to(torch.int64) @ b.cpu().to(torch.int64).t()).to(torch.int32)
    assert torch.equal(c[:4].cpu(), ref), "torch._int_mm disagrees with an int64 matmul"
    return result(device, f"matmul i8 {m}x{n}x{k}", "torch._int_mm (cuBLASLt)", 2.0 * m * n * k,
                  float(m * k + n * k + 4 * m * n), lambda: torch._int_mm(a, bt))


def memory(device, mib):
    n = mib << 20
    x = torch.randint(-128, 128, (n,), dtype=torch.int8, device="cuda")
    out = torch.empty_like(x)
    return [result(device, f"relu i8 {mib} MiB in + out", "torch.clamp_min(int8)", float(n),
                   2.0 * n, lambda: torch.clamp_min(x, 0, out=out)),
            result(device, f"copy (relu u8) {mib} MiB in + out", "Tensor.copy_", float(n),
                   2.0 * n, lambda: out.copy_(x))]


def argmax(device, mib):
    cols = 32768  # as pxbench: rows of 8192 pixels of i8
    rows = (mib << 20) // cols
    x = torch.randint(-128, 128, (rows, cols), dtype=torch.int8, device="cuda")
    return result(device, f"argmax i8 {mib} MiB", "torch.argmax(int8, dim=1)", float(rows * cols),
                  float(rows * cols), lambda: torch.argmax(x, dim=1))


def launch_sync(device):
    x = torch.zeros(1, device="cuda")
    samples = []
    for i in range(210):
        t0 = time.perf_counter()
        x.add_(1)
        torch.cuda.synchronize()
        if i >= 10:
            samples.append((time.perf_counter() - t0) * 1e3)
    st = stats(samples)
    print(f"{'launch + sync (host clock)':<36} {'':<36} {st['median']:10.4f} ms", flush=True)
    return {"device": device, "workload": "launch + sync", "path": "peer",
            "variant": "one tiny kernel + synchronize, host clock", "ops": 0, "bytes": 0,
            "gpu_ms": st, "converged": True, "tops": None, "gbps": None, "error": ""}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--json")
    parser.add_argument("--preset", default="full", choices=["smoke", "full"])
    parser.add_argument("--only", default="", help="only the workloads whose name contains this")
    args = parser.parse_args()
    device = f"[0] {torch.cuda.get_device_name(0)}"
    sizes = [(128, 128, 128)] if args.preset == "smoke" else [
        (128, 128, 128), (1024, 1024, 1024), (2048, 2048, 2048), (4096, 4096, 4096),
        (4096, 4096, 1024), (8192, 8192, 8192)]
    results = [matmul(device, m, n, k) for m, n, k in sizes if args.only in f"matmul i8 {m}x{n}x{k}"]
    for mib in ([1] if args.preset == "smoke" else [128, 508]):
        if args.only in f"relu i8 {mib} MiB in + out" or args.only in f"copy (relu u8) {mib} MiB":
            results += memory(device, mib)
    for mib in ([1] if args.preset == "smoke" else [512]):
        if args.only in f"argmax i8 {mib} MiB":
            results.append(argmax(device, mib))
    if not args.only:
        results.append(launch_sync(device))
    doc = {"schema": 2, "tool": "peer", "peer": f"PyTorch {torch.__version__} (CUDA {torch.version.cuda})",
           "host": socket.gethostname(),
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "preset": args.preset, "mode": "warm",
           "devices": [{"index": 0, "name": torch.cuda.get_device_name(0)}], "results": results}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)


if __name__ == "__main__":
    main()
