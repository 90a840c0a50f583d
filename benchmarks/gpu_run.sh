#!/usr/bin/env bash
# The one command of a GPU-machine run (../shared/device/README.md): from the project root there,
# with the Vulkan loader and validation layer packages in .gl/ and Release binaries in .devrun/
# (benchmarks/prepare_gpu_run.sh makes both here), it lists the devices, runs the GPU tests with
# the validation layer on, then pxbench and its PyTorch peer, and writes every output under $OUT.
#   benchmarks/gpu_run.sh [full|smoke|cartridge|transformer|transformer-speed|matmul|final|seeds|reliability]
# `cartridge` instead checks and times the shipped model cartridge (assets/kjv.pxa): its GPU tests,
# its self-test and a generation on the GPU, `pxbench cartridge` per batch size and its PyTorch peer.
# `matmul` runs the kernel tests, then every matmul with every tensor-core tile (pxbench --sweep),
# the tensor-core ceiling and cuBLASLt; `final` the kernel tests, the full preset against the
# peer, and the tile sweep at 8192^3; `seeds` the seeds' table (pxbench --reference);
# `reliability` the protocol and safety tests (kernels, differential, interpreter, injected faults,
# GPU-assisted validation, pxrun), the suite on every path and variant, and the load test.
# `transformer` checks the transformer instructions (GPU tests, the suite) and times them;
# `transformer-speed` times the transformer cartridge at batch 1, 64 and 85 against its PyTorch
# peer (benchmarks/peers/transformer_peer.py, eager and torch.compile with a KV cache).
# Outputs: machine.txt, pxinfo.txt, gpu_tests.txt, pxconform.txt and conformance/, pxbench.json,
# peer.json, compare.txt and pxbench-vs-peer.svg.
set -uo pipefail
preset=${1:-full}
out=${OUT:-/tmp/pxvm-gpu-run}
mkdir -p "$out"
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export LD_LIBRARY_PATH=$PWD/.devrun/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
if ! .devrun/pxinfo > /dev/null 2>&1; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
export PXVM_CACHE_DIR=/tmp/pxvm-cache PXVM_TOOL_DIR=$PWD/.devrun
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; } > "$out/machine.txt" 2>&1
.devrun/pxinfo > "$out/pxinfo.txt" 2>&1

if [ "$preset" = cartridge ]; then
  PXVM_VALIDATE=1 timeout 200 .devrun/pxvm_gpu_tests "[cartridge],kernels: embed" \
    > "$out/cartridge_tests.txt" 2>&1
  echo "cartridge gpu tests: exit $?" | tee -a "$out/cartridge_tests.txt"
  if [ -z "${PXVM_QUICK:-}" ]; then # PXVM_QUICK=1: the cartridge alone
    timeout 150 .devrun/pxconform --suite tests/conformance --device all --validate --quiet \
      > "$out/pxconform.txt" 2>&1
    echo "pxconform: exit $?" | tee -a "$out/pxconform.txt"
  fi
  { .devrun/pxrun --validate assets/kjv.pxa; echo "exit $?";
    .devrun/pxrun assets/kjv.pxa --prompt "And God said" --tokens 200; echo "exit $?";
    .devrun/pxrun --device cpu assets/kjv.pxa --prompt "And God said" --tokens 200; echo "exit $?";
  } > "$out/pxrun_cartridge.txt" 2>&1
  cat "$out/pxrun_cartridge.txt"
  timeout 300 .devrun/pxbench cartridge assets/kjv-window.safetensors --text assets/kjv/heldout.txt \
    --batches 1 64 4096 max --json "$out/pxbench_cartridge.json" 2>&1 | tee "$out/pxbench_cartridge.txt"
  largest=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['results'][-1]['batch'])" \
    "$out/pxbench_cartridge.json" 2>/dev/null || echo 32000)
  PYTHONUNBUFFERED=1 timeout 250 python3 benchmarks/peers/cartridge_peer.py \
    assets/kjv-window.safetensors --batches 1 64 4096 "$largest" --json "$out/cartridge_peer.json" \
    2>&1 | tee "$out/cartridge_peer.txt"
  exit 0
fi

if [ "$preset" = transformer-speed ]; then # the transformer cartridge against its PyTorch peer
  # Needs build/kjv-transformer-b64.pxa and -b85.pxa (pxc pack --batch 64 / 85 of the integer model
  # model/rebuild_transformer.sh writes) carried; the reports come back as one r.tgz.
  r=$out/r; mkdir -p "$r"; p='And God said'
  .devrun/pxrun assets/kjv-transformer.pxa --prompt "$p" --tokens 200 > "$r/b1_verify_text.txt" 2> "$r/b1_verify.txt"
  .devrun/pxrun --no-verify assets/kjv-transformer.pxa --prompt "$p" --tokens 200 > "$r/b1_text.txt" 2> "$r/b1.txt"
  .devrun/pxrun --device cpu assets/kjv-transformer.pxa --prompt "$p" --tokens 200 > "$r/b1_cpu_text.txt" 2> "$r/b1_cpu.txt"
  for n in 64 85; do
    for i in $(seq $n); do echo "$p"; done > "/tmp/p$n"
    timeout 60 .devrun/pxrun --no-verify "build/kjv-transformer-b$n.pxa" --batch "/tmp/p$n" --tokens 200 \
      > "$r/b${n}_text.txt" 2> "$r/b$n.txt"
  done
  timeout 90 .devrun/pxrun build/kjv-transformer-b64.pxa --batch /tmp/p64 --tokens 40 \
    > "$r/b64_verify_text.txt" 2> "$r/b64_verify.txt"
  PYTHONUNBUFFERED=1 timeout 240 python3 benchmarks/peers/transformer_peer.py --batches 1 64 85 \
    --tokens 200 --json "$r/peer.json" > "$r/peer.txt" 2>&1
  (cd "$out" && tar czf r.tgz r && rm -rf r)
  exit 0
fi
if [ "$preset" = transformer ]; then # the transformer instructions and cartridge (issues 20, 21)
  PXVM_VALIDATE=1 timeout 120 .devrun/pxvm_gpu_tests \
    "kernels: the transformer instructions*,attend is batch-invariant*" > "$out/gpu_tests.txt" 2>&1
  echo "transformer gpu tests: exit $?" | tee -a "$out/gpu_tests.txt"
  timeout 150 .devrun/pxconform --suite tests/conformance --device all --validate --quiet \
    > "$out/pxconform.txt" 2>&1
  echo "pxconform: exit $?" | tee -a "$out/pxconform.txt"
  { timeout 60 .devrun/pxrun --validate assets/kjv-transformer.pxa; echo "exit $?";
    timeout 60 .devrun/pxrun assets/kjv-transformer.pxa --prompt "And God said" --tokens 200; echo "exit $?";
    timeout 60 .devrun/pxrun --no-verify assets/kjv-transformer.pxa --prompt "And God said" --tokens 200; echo "exit $?";
    timeout 60 .devrun/pxrun --device cpu assets/kjv-transformer.pxa --prompt "And God said" --tokens 200; echo "exit $?";
  } > "$out/pxrun_transformer.txt" 2>&1
  for w in "copy (relu u8) 508" rmsnorm "add i32" "lut i8" attend; do
    timeout 90 .devrun/pxbench --only "$w" --time-limit-s 0.5 \
      --json "$out/bench-$(echo "$w" | tr -c 'a-z0-9\n' _).json" 2>&1
  done > "$out/pxbench.txt"
  exit 0
fi
if [ "$preset" = final ]; then # the kernel tests, the full preset, a sweep at 8192^3, the peer
  PXVM_VALIDATE=1 timeout 200 .devrun/pxvm_gpu_tests "[kernels]" > "$out/gpu_tests.txt" 2>&1
  echo "gpu tests: exit $?" | tee -a "$out/gpu_tests.txt"
  timeout 280 .devrun/pxbench --preset full --time-limit-s 1 --json "$out/pxbench.json" 2>&1 \
    | tee "$out/pxbench.txt"
  PYTHONUNBUFFERED=1 timeout 90 python3 benchmarks/peers/torch_peer.py --json "$out/peer.json" \
    2>&1 | tee "$out/peer.txt"
  .devrun/pxbench compare "$out/pxbench.json" "$out/peer.json" --svg "$out/pxbench-vs-peer.svg" \
    > "$out/compare.txt" 2>&1
  timeout 60 .devrun/pxbench --only "matmul i8 8192" --sweep --time-limit-s 0.3 --warmup-ms 200 \
    --no-verify --json "$out/sweep.json" > "$out/sweep.txt" 2>&1
  exit 0
fi
if [ "$preset" = seeds ]; then # the seeds' table: the CPU reference against the GPU
  for size in 128x128x128 1024x1024x1024 4096x4096x4096; do
    timeout 150 .devrun/pxbench --only "matmul i8 $size" --reference --time-limit-s 0.5 \
      --json "$out/seeds-$size.json" 2>&1 | tee -a "$out/seeds.txt"
  done
  exit 0
fi
if [ "$preset" = reliability ]; then
  # The tests name files by the source directory they were built in.
  [ -e /work/main ] || {
    mkdir -p /work && ln -s "$PWD" /work/main; }
  PXVM_VALIDATE=1 timeout 330 .devrun/pxvm_gpu_tests \
    "[kernels],[differential],[resident],[interpreter],[inject],[robust],[cli],[timeout]" \
    > "$out/gpu_tests.txt" 2>&1
  echo "gpu tests: exit $?" | tee -a "$out/gpu_tests.txt"
  timeout 150 .devrun/pxconform --suite tests/conformance --device all --validate --quiet \
    > "$out/pxconform.txt" 2>&1
  echo "pxconform: exit $?" | tee -a "$out/pxconform.txt"
  timeout 100 .devrun/pxbench_load assets/tensor_demo.pxi assets/kjv.pxa --runs 10000 \
    > "$out/load.txt" 2>&1
  echo "pxbench_load: exit $?" | tee -a "$out/load.txt"
  exit 0
fi
if [ "$preset" = matmul ]; then # the tensor-core matmuls: their tests, every tile, the peer
  PXVM_VALIDATE=1 timeout 240 .devrun/pxvm_gpu_tests "${PXVM_TESTS:-[kernels]}" > "$out/gpu_tests.txt" 2>&1
  echo "gpu tests: exit $?" | tee -a "$out/gpu_tests.txt"
  timeout 330 .devrun/pxbench --only matmul --sweep --time-limit-s 0.4 --warmup-ms 300 \
    --json "$out/pxbench.json" 2>&1 | tee "$out/pxbench.txt"
  PYTHONUNBUFFERED=1 timeout 100 python3 benchmarks/peers/torch_peer.py --only matmul \
    --json "$out/peer.json" 2>&1 | tee "$out/peer.txt"
  exit 0
fi

# The kernels path against the reference on the GPU: every kernel test and the differential test
# (every variant), validation layer on.
PXVM_VALIDATE=1 timeout 300 .devrun/pxvm_gpu_tests "[kernels],[differential],[resident],[interpreter]" \
  > "$out/gpu_tests.txt" 2>&1
echo "gpu tests: exit $?" | tee -a "$out/gpu_tests.txt"

# The conformance suite on the reference and the GPU, every path and variant.
timeout 200 .devrun/pxconform --suite tests/conformance --device all --validate --quiet \
  --bundle "$out/conformance" > "$out/pxconform.txt" 2>&1
echo "pxconform: exit $?" | tee -a "$out/pxconform.txt"

timeout 400 .devrun/pxbench --preset "$preset" --json "$out/pxbench.json" 2>&1 | tee "$out/pxbench.txt"
PYTHONUNBUFFERED=1 timeout 200 python3 benchmarks/peers/torch_peer.py --preset "$preset" \
  --json "$out/peer.json" 2>&1 | tee "$out/peer.txt"
.devrun/pxbench compare "$out/pxbench.json" "$out/peer.json" --svg "$out/pxbench-vs-peer.svg" \
  2>&1 | tee "$out/compare.txt"
