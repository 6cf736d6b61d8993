#!/bin/sh
# Resting-state fMRI of three HCP subjects: build the model on their
# structure, train it on two subjects' BOLD, and compare the third subject's
# functional connectivity (FC) with the model's and with the baselines.
# Usage: examples/hcp_rest/run.sh [BUILD_DIR] [DATA_DIR] [STEPS]
#   DATA_DIR holds hcp/<id>/ (default ../shared/data); STEPS overrides the
#   spec's training steps.
set -eu
build=${1:-build}
data=${2:-../shared/data}
here=$(dirname "$0")
out=$here/out
if [ ! -d "$data/hcp" ]; then
  echo "hcp_rest: no $data/hcp (give the folder holding hcp/<id>/ as DATA_DIR)" >&2
  exit 2
fi
mkdir -p "$out"
data=$(cd "$data" && pwd)
ln -sfn "$data" "$out/data"
cp "$here/hcp_rest.lobe" "$out/"
"$build/bin/lobec" build "$out/hcp_rest.lobe" -o "$out/brain"
"$out/brain" info | head -20
steps=${3:+--steps $3}
# shellcheck disable=SC2086  # steps is empty or two words
"$out/brain" train --checkpoint "$out/brain.ckpt" $steps
echo "hcp_rest: per observation; fc_r of conn.s102816 is the model's FC against the"
echo "held-out subject's (its BOLD was never trained on):"
"$out/brain" eval --checkpoint "$out/brain.ckpt" --fc-out "$out"
echo "hcp_rest: the baselines on the same subject (README.md):"
"$build/bin/hcp_fc_report" --data "$data" --test 102816 --train 101309,102311
