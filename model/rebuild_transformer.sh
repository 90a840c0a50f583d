#!/bin/sh
# Rebuilds the transformer cartridge from its float weights, model/transformer/model.safetensors
# (trained on an H100 by model/train_transformer.py; the command is in the weights' metadata and
# in model/transformer/train.log): quantises and calibrates them (model/quantize_transformer.py,
# numpy), packs the cartridge and checks it byte for byte against assets/kjv-transformer.pxa.
# Then packs a batch-3 cartridge of the same model and checks that each prompt of a batch
# continues exactly as it does alone. Run after ./build.sh build; the argument is a scratch folder
# (default build/kjv-transformer); PXC, PXRUN and PYTHON name the tools (defaults: build/cli/…,
# /usr/bin/python3).
set -eu
cd "$(dirname "$0")/.."
out=${1:-build/kjv-transformer}
pxc=${PXC:-build/cli/pxc}
pxrun=${PXRUN:-build/cli/pxrun}
python=${PYTHON:-/usr/bin/python3}
mkdir -p "$out"
"$python" model/quantize_transformer.py model/transformer/model.safetensors \
  --out "$out/int.safetensors"
"$pxc" pack "$out/int.safetensors" --calibration assets/kjv/calibration.txt \
  -o "$out/kjv-transformer.pxa" --name kjv-char-transformer \
  --licence "CC0-1.0 (weights); text: public domain" \
  --description "character transformer of the King James Bible: 6 layers, width 384, 6 heads, 256 positions" \
  --self-test-prompt "And God said" --self-test-tokens 80
cmp "$out/kjv-transformer.pxa" assets/kjv-transformer.pxa
echo "rebuilt assets/kjv-transformer.pxa byte for byte"

# Batch invariance: three prompts in one batch-3 cartridge, each against its run alone.
"$pxc" pack "$out/int.safetensors" --calibration assets/kjv/calibration.txt \
  -o "$out/kjv-transformer-b3.pxa" --batch 3 > /dev/null
printf 'In the beginning\nAnd it came to pass\nThe LORD is my shepherd\n' > "$out/prompts.txt"
"$pxrun" --device cpu "$out/kjv-transformer-b3.pxa" --batch "$out/prompts.txt" --tokens 40 \
  > "$out/batch.txt"
: > "$out/alone.txt"
while IFS= read -r prompt; do
  "$pxrun" --device cpu assets/kjv-transformer.pxa --prompt "$prompt" --tokens 40 >> "$out/alone.txt"
done < "$out/prompts.txt"
cmp "$out/batch.txt" "$out/alone.txt"
echo "each prompt of a batch of 3 continues as it does alone"
