#!/bin/sh
# The graph demo: make the data, draw and compile the spec, train, report the
# fit of the recorded cells and the prediction of the cells left out.
# Usage: examples/visual_pathway/run.sh [BUILD_DIR]   (from the repository root)
set -eu
build=${1:-build}
here=$(dirname "$0")
out=$here/out
mkdir -p "$out"

"$build/bin/visual_pathway_data" "$here/data"
"$build/bin/lobec" graph "$here/visual_pathway.lobe" -o "$out/visual_pathway.dot"
"$build/bin/lobec" build "$here/visual_pathway.lobe" -o "$out/brain"
"$out/brain" info
"$out/brain" train --checkpoint "$out/brain.ckpt"
echo "visual_pathway: the recorded cells, then (heldout lines) the cells never recorded,"
echo "predicted through the head of a recorded source on the same region:"
"$out/brain" eval --checkpoint "$out/brain.ckpt" \
  --heldout V2.m2="$here/data/heldout/v2_m2.npy" --head V2.m1 \
  --heldout V1.m3="$here/data/heldout/v1_m3.npy" --head V1.m1
echo "visual_pathway: region graph in $out/visual_pathway.dot (render: dot -Tsvg)"
