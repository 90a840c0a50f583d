#!/usr/bin/env python3
"""The PyTorch peer of pxbench on an NVIDIA machine: cuBLASLt int8 matmul (torch._int_mm with B
column-major, its fast layout), int8 relu and a device copy of the same sizes, and CUDA launch +
sync, timed with CUDA events after a warm-up (median of many). Writes JSON for
benchmarks/RESULTS.md, whose figures are pxVM/peer ratios from one run on one machine.

Usage: peer_torch.py [--json FILE] [--preset smoke|full]
"""
import argparse
import datetime
import json
import statistics
import time

import torch


def time_ms(fn, runs):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    samples = []
    for _ in range(runs):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end))
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples),
            "samples": samples}


def int_mm(m, n, k, runs):
    a = torch.randint(-128, 128, (m, k), dtype=torch.int8, device="cuda")
    b = torch.randint(-128, 128, (n, k), dtype=torch.int8, device="cuda")
    bt = b.t()  # (k, n), column-major: cuBLASLt's fast int8 layout
    c = torch._int_mm(a, bt)
    # The peer computes the same C = A . B^T as pxVM, exactly (int32, wrapping never reached).
    ref = (a[:4].cpu().to(torch.int64) @ b.cpu().to(torch.int64).t()).to(torch.int32)
    assert torch.equal(c[:4].cpu(), ref), "torch._int_mm disagrees with an int64 matmul"
    t = time_ms(lambda: torch._int_mm(a, bt), runs)
    return {"workload": f"matmul i8 {m}x{n}x{k}", "peer": "torch._int_mm (cuBLASLt, B col-major)",
            "ms": t, "tops": 2.0 * m * n * k / t["median"] / 1e9}


def relu_and_copy(mib, runs):
    n = mib << 20
    x = torch.randint(-128, 128, (n,), dtype=torch.int8, device="cuda")
    out = torch.empty_like(x)
    relu = time_ms(lambda: torch.clamp_min(x, 0, out=out), runs)
    copy = time_ms(lambda: out.copy_(x), runs)
    return [{"workload": f"relu i8 {mib} MiB in + out", "peer": "torch.clamp_min(int8, 0, out=)",
             "ms": relu, "gbps": 2.0 * n / relu["median"] / 1e6},
            {"workload": f"copy {mib} MiB in + out", "peer": "Tensor.copy_", "ms": copy,
             "gbps": 2.0 * n / copy["median"] / 1e6}]


def launch_sync(runs):
    x = torch.zeros(1, device="cuda")
    samples = []
    for i in range(runs + 10):
        t0 = time.perf_counter()
        x.add_(1)
        torch.cuda.synchronize()
        if i >= 10:
            samples.append((time.perf_counter() - t0) * 1e3)
    return {"workload": "launch + sync", "peer": "one tiny kernel + cudaDeviceSynchronize",
            "ms": {"median": statistics.median(samples), "min": min(samples),
                   "max": max(samples), "samples": samples}}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--json")
    parser.add_argument("--preset", default="full", choices=["smoke", "full"])
    args = parser.parse_args()
    runs = 20 if args.preset == "smoke" else 50
    sizes = [(256, 256, 256)] if args.preset == "smoke" else [
        (1024, 1024, 1024), (2048, 2048, 2048), (4096, 4096, 4096), (8192, 8192, 8192)]
    results = [int_mm(m, n, k, runs) for m, n, k in sizes]
    results += relu_and_copy(1 if args.preset == "smoke" else 128, runs)
    results.append(launch_sync(200))
    doc = {"schema": 1, "tool": "peer_torch.py",
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "device": torch.cuda.get_device_name(0), "torch": torch.__version__,
           "cuda": torch.version.cuda, "results": results}
    for r in results:
        extra = f"{r['tops']:.1f} TOPS" if "tops" in r else (
            f"{r['gbps']:.0f} GB/s" if "gbps" in r else "")
        print(f"{r['workload']:<40} {r['peer']:<42} {r['ms']['median']:.4f} ms {extra}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)


if __name__ == "__main__":
    main()
