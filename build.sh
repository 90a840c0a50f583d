#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine: installs what is missing (apt), builds, then
#   ./build.sh demo   runs the main job: the shipped model cartridge continues a prompt, on the
#                     first GPU (or lavapipe), every step checked against the reference
#   ./build.sh test   runs every test (validation layer on)
#   ./build.sh build  only installs and builds
# BUILD_DIR (default build) and BUILD_TYPE (default Release) may be set in the environment.
set -euo pipefail
cd "$(dirname "$0")"
action=${1:-demo}
build_dir=${BUILD_DIR:-build}

packages=(g++ cmake ninja-build pkg-config libvulkan-dev glslang-tools spirv-tools spirv-cross
          libspirv-cross-c-shared-dev catch2 libcli11-dev
          nlohmann-json3-dev libxxhash-dev libspng-dev nettle-dev zlib1g-dev mesa-vulkan-drivers vulkan-validationlayers clang-format python3 python3-numpy)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "build.sh: installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo > /dev/null || { echo "build.sh: installing packages needs root: run as root or install sudo" >&2; exit 1; }
    sudo=sudo
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" > /dev/null
cmake --build "$build_dir"

case "$action" in
  build) ;;
  demo) "$build_dir/cli/pxrun" assets/kjv-transformer.pxa --prompt "And God said" --tokens 200 ;;
  test) PXVM_VALIDATE=1 ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)" ;;
  *) echo "usage: ./build.sh [demo|test|build]" >&2; exit 1 ;;
esac
