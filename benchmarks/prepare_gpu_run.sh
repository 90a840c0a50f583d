#!/usr/bin/env bash
# Prepares a GPU-machine run here (../shared/device/README.md): downloads the Vulkan loader and
# the validation layer into .gl/ (once), builds Release and copies the binaries that
# benchmarks/gpu_run.sh runs into .devrun/, checking they need no library the GPU machine lacks.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d .gl ] && ls .gl/*.deb > /dev/null 2>&1 || ../shared/device/prepare.sh
build_dir=${BUILD_DIR:-build}
cmake --build "$build_dir" --target pxinfo pxrun pxc pxconform pxbench pxbench_load pxvm_gpu_tests
mkdir -p .devrun/lib
for b in cli/pxinfo cli/pxrun cli/pxc cli/pxconform benchmarks/pxbench benchmarks/pxbench_load \
  tests/pxvm_gpu_tests; do
  cp "$build_dir/$b" .devrun/
  # libspng and nettle (cartridges) travel in .devrun/lib; gpu_run.sh puts it on LD_LIBRARY_PATH.
  for lib in $(ldd ".devrun/$(basename "$b")" | awk '/libspng|libnettle/ {print $3}'); do
    cp -L "$lib" .devrun/lib/
  done
  extra=$(ldd ".devrun/$(basename "$b")" | grep -vE 'linux-vdso|ld-linux|libc\.so|libstdc\+\+|libm\.so|libgcc_s|libvulkan|libspng|libnettle|libz\.so' || true)
  if [ -n "$extra" ]; then
    echo "prepare_gpu_run.sh: $b needs libraries the GPU machine lacks:" >&2
    echo "$extra" >&2
    exit 1
  fi
done
ls -la .devrun
