#!/usr/bin/env bash
# Runs every libFuzzer target of fuzz/ for SECONDS each on its seed corpus (fuzz/corpus/TARGET,
# read only) and a working corpus under BUILD_DIR; exits non-zero at the first crash, leak,
# sanitizer report or time-out (the input is saved as BUILD_DIR/fuzz-artifacts/TARGET/crash-*).
#   fuzz/run.sh BUILD_DIR [SECONDS]   (BUILD_DIR configured with -DPXVM_FUZZ=ON, docs/SECURITY.md)
set -euo pipefail
build=$1
seconds=${2:-20}
here=$(cd "$(dirname "$0")" && pwd)
for target in png assembler program spirv manifest safetensors; do
  work=$build/fuzz-corpus/$target
  artifacts=$build/fuzz-artifacts/$target
  mkdir -p "$work" "$artifacts"
  echo "fuzz_$target: $seconds s"
  # -timeout: one input may take at most 10 s; -rss_limit_mb: the readers' memory limits hold.
  status=0
  "$build/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len=8192 -print_final_stats=1 -artifact_prefix="$artifacts/" \
    "$work" "$here/corpus/$target" > "$build/fuzz-$target.log" 2>&1 || status=$?
  grep -E "^stat::number_of_executed_units|ERROR|SUMMARY|Test unit written" \
    "$build/fuzz-$target.log" || true
  if [ "$status" -ne 0 ]; then
    tail -40 "$build/fuzz-$target.log"
    echo "fuzz_$target failed (exit $status)"
    exit 1
  fi
done
