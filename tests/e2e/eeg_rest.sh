# The EEG example end to end on a small budget: TVB's 76-region connectome as
# regions, structure and delays, EEG of two EEGMAT subjects through the
# example's lead field, a mouse's spikes as a local source. Gradients against
# finite differences, training with a loss per term, eval of each. Skips (77)
# without the shared data.
. "$(dirname "$0")/common.sh"
data=$src/../shared/data
for d in tvb eegmat nwb; do
  [ -d "$data/$d" ] || { echo "SKIP: $data/$d is absent (shared data, not part of the project)"; exit 77; }
done
ln -s "$(cd "$data" && pwd)" data
cp "$src/examples/eeg_rest/eeg_rest.lobe" .
"$bin/eeg_rest_leadfield" data/tvb/connectivity_76.zip lead_field.csv
"$lobec" build eeg_rest.lobe -o brain

./brain info > info.txt || fail "info: $(cat info.txt)"
grep -q '^regions: 76' info.txt || fail "expected 76 regions: $(head -20 info.txt)"
./brain gradcheck > gradcheck.txt || fail "gradcheck failed: $(tail -3 gradcheck.txt)"
grep '^observations:' gradcheck.txt

./brain train --steps 100 --checkpoint ck > train.log 2>&1 || fail "train: $(tail -5 train.log)"
grep -q '^trained steps=100' train.log || fail "train did not finish: $(tail -3 train.log)"
grep -q 'loss\[rHC.mouse\]=.*loss\[scalp.e00\]=.*loss\[scalp.e01\]=' train.log ||
  fail "no per-term losses: $(tail -2 train.log)"

./brain eval --checkpoint ck > eval.txt || fail "eval: $(cat eval.txt)"
cat eval.txt
grep -q '^rHC.mouse ' eval.txt || fail "eval lacks the spikes: $(cat eval.txt)"
[ "$(grep -c '^scalp.e0[01] *eeg' eval.txt)" -eq 2 ] || fail "eval lacks the eeg: $(cat eval.txt)"
echo "eeg_rest: ok"
