#!/bin/sh
# Rebuilds the transformer cartridge from its float weights, model/transformer/model.safetensors
# (trained on an H100 by model/train_transformer.py; the command is in the weights' metadata and
# in model/transformer/train.log): quantises and calibrates them (model/quantize_transformer.py,
# numpy), packs the cartridge and checks it byte for byte against assets/kjv-transformer.pxa.
# Run after ./build.sh build; the argument is a scratch folder (default build/kjv-transformer).
set -eu
cd "$(dirname "$0")/.."
out=${1:-build/kjv-transformer}
mkdir -p "$out"
/usr/bin/python3 model/quantize_transformer.py model/transformer/model.safetensors \
  --out "$out/int.safetensors"
build/cli/pxc pack "$out/int.safetensors" --calibration assets/kjv/calibration.txt \
  -o "$out/kjv-transformer.pxa" --name kjv-char-transformer \
  --licence "CC0-1.0 (weights); text: public domain" \
  --description "character transformer of the King James Bible: 6 layers, width 384, 6 heads, 256 positions" \
  --self-test-prompt "And God said" --self-test-tokens 80
cmp "$out/kjv-transformer.pxa" assets/kjv-transformer.pxa
echo "rebuilt assets/kjv-transformer.pxa byte for byte"
