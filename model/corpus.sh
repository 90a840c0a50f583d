#!/bin/sh
# Writes the training corpus assets/kjv/kjv.txt: the whole King James Bible as
# printed by Debian's bible-kjv (4.38) from bible-kjv-text, checked against a
# fixed SHA-256 so every model is trained and evaluated on the same bytes; and
# from it assets/kjv/heldout.txt (the last 10%, the held-out split of
# model/kjv.py, for pxc eval) and assets/kjv/calibration.txt (256 KiB of the
# training split, for pxc pack --calibration). The text is ASCII: bytes are
# characters.
set -eu
cd "$(dirname "$0")/.."
SHA256=82fa5f3788c6a9a010fb128a0f0bf588984b5888a82058520620eded59b033ea
OUT=assets/kjv/kjv.txt
command -v bible >/dev/null || { echo "corpus.sh: needs bible (apt-get install bible-kjv bible-kjv-text)" >&2; exit 1; }
mkdir -p assets/kjv
# bible wraps lines at $COLUMNS; pin it to the default width of 80.
COLUMNS=80 bible -p /usr/lib Gen1:1-Rev22:21 > "$OUT.tmp"
GOT=$(sha256sum "$OUT.tmp" | cut -d' ' -f1)
if [ "$GOT" != "$SHA256" ]; then
    rm -f "$OUT.tmp"
    echo "corpus.sh: SHA-256 $GOT, expected $SHA256" >&2
    exit 1
fi
mv "$OUT.tmp" "$OUT"
SIZE=$(wc -c < "$OUT")
CUT=$((SIZE * 9 / 10))
tail -c +$((CUT + 1)) "$OUT" > assets/kjv/heldout.txt
head -c $((1000000 + 262144)) "$OUT" | tail -c 262144 > assets/kjv/calibration.txt
echo "$OUT $SIZE bytes, sha256 $SHA256; heldout.txt $((SIZE - CUT)) bytes; calibration.txt 262144 bytes"
