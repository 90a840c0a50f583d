#!/bin/sh
# Rebuilds the shipped model from nothing but Debian packages: the corpus, the float weights
# (about 6 minutes on 2 CPU cores; deterministic for a given machine and torch build), the
# cartridge and its held-out scores. Run from anywhere after ./build.sh build.
set -eu
cd "$(dirname "$0")/.."
model/corpus.sh
/usr/bin/python3 model/train.py --device cpu --epochs 8 --batch 4096 --lr 4e-3 --out build/kjv-model
cp build/kjv-model/model.safetensors assets/kjv-window.safetensors
build/cli/pxc pack assets/kjv-window.safetensors --calibration assets/kjv/calibration.txt \
  -o assets/kjv.pxa --name kjv-char-window --licence "CC0-1.0 (weights); text: public domain" \
  --description "character model of the King James Bible: the last 16 characters, embeddings of 24, one hidden layer of 512" \
  --self-test-prompt "And God said" --self-test-tokens 80
build/cli/pxc eval assets/kjv.pxa assets/kjv/heldout.txt --float assets/kjv-window.safetensors
