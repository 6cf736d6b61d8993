#!/bin/sh
# EEG at rest: the TVB connectome as the model's regions and wiring, EEG of
# two EEGMAT subjects through a lead field, spikes of a mouse as a local
# source; trains and reports each loss term.
# Usage: examples/eeg_rest/run.sh [BUILD_DIR] [DATA_DIR] [STEPS]
#   DATA_DIR holds tvb/, eegmat/ and nwb/ (default ../shared/data); STEPS
#   overrides the spec's training steps.
set -eu
build=${1:-build}
data=${2:-../shared/data}
here=$(dirname "$0")
out=$here/out
for d in tvb eegmat nwb; do
  if [ ! -d "$data/$d" ]; then
    echo "eeg_rest: no $data/$d (give the folder holding tvb/, eegmat/, nwb/ as DATA_DIR)" >&2
    exit 2
  fi
done
mkdir -p "$out"
data=$(cd "$data" && pwd)
ln -sfn "$data" "$out/data"
cp "$here/eeg_rest.lobe" "$out/"
"$build/bin/eeg_rest_leadfield" "$data/tvb/connectivity_76.zip" "$out/lead_field.csv"
"$build/bin/lobec" build "$out/eeg_rest.lobe" -o "$out/brain"
"$out/brain" info | head -12
steps=${3:+--steps $3}
# shellcheck disable=SC2086  # steps is empty or two words
"$out/brain" train --checkpoint "$out/brain.ckpt" $steps
echo "eeg_rest: each term on its own data (eeg: r per channel; rHC.mouse: spikes):"
"$out/brain" eval --checkpoint "$out/brain.ckpt"
