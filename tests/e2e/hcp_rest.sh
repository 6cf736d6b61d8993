# The HCP example end to end on a small budget: the 94-region AAL2 model with
# each subject's tractography as its structure, BOLD of two subjects, the
# third subject's FC predicted. Gradients (BOLD through the HRF, the gates
# of 8742 edges) against finite differences, training, eval of every
# observation with the model's FC matrix written out. Skips (77) without the
# shared data.
. "$(dirname "$0")/common.sh"
data=$src/../shared/data
[ -d "$data/hcp" ] || { echo "SKIP: $data/hcp is absent (shared data, not part of the project)"; exit 77; }
ln -s "$(cd "$data" && pwd)" data
cp "$src/examples/hcp_rest/hcp_rest.lobe" .
"$lobec" build hcp_rest.lobe -o brain

./brain info > info.txt || fail "info: $(cat info.txt)"
grep -q '^regions: 94' info.txt || fail "expected 94 regions: $(head -20 info.txt)"
./brain gradcheck > gradcheck.txt || fail "gradcheck failed: $(tail -3 gradcheck.txt)"
grep '^observations:' gradcheck.txt

./brain train --steps 400 --checkpoint ck > train.log 2>&1 || fail "train: $(tail -5 train.log)"
grep -q '^trained steps=400' train.log || fail "train did not finish: $(tail -3 train.log)"
grep -q 'loss\[rest.s101309\]=.*loss\[rest.s102311\]=' train.log ||
  fail "no per-term losses: $(tail -2 train.log)"

./brain eval --checkpoint ck --fc-out fc > eval.txt || fail "eval: $(cat eval.txt)"
cat eval.txt
# The trained subjects' BOLD is fitted better than by its mean (loss 1 on
# standardised BOLD); the held-out subject's FC correlates with the model's.
awk '$2 == "bold" { n++; if (!($5 + 0 < 1)) bad = bad " " $1 }
     $2 == "fc" { m++; if (!($7 + 0 > 0.3)) bad = bad " " $1 }
     END { if (n != 2 || m != 1 || bad != "") { print "not fitted:" bad; exit 1 } }' eval.txt ||
  fail "eval: $(cat eval.txt)"
[ "$(wc -l < fc/conn.s102816.fc.csv)" -eq 95 ] || fail "fc/conn.s102816.fc.csv is not 94 x 94 with a header"
echo "hcp_rest: ok"
