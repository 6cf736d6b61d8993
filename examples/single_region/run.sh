#!/bin/sh
# The demo: make the data, compile the spec, train, report the fit, predict.
# Usage: examples/single_region/run.sh [BUILD_DIR]   (from the repository root)
set -eu
build=${1:-build}
here=$(dirname "$0")
out=$here/out
mkdir -p "$out"

"$build/bin/single_region_data" "$here/data"
"$build/bin/lobec" build "$here/single_region.lobe" -o "$out/brain"
"$out/brain" info
"$out/brain" train --checkpoint "$out/brain.ckpt"
"$out/brain" eval --checkpoint "$out/brain.ckpt"
"$out/brain" predict --checkpoint "$out/brain.ckpt" --region V1 --subject m1 \
  --from 0 --to 2 -o "$out/predicted_v1_m1.csv"
echo "demo: predictions for V1 of m1 over 0..2 s in $out/predicted_v1_m1.csv"
