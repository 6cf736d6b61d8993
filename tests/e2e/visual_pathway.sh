# The graph example end to end: three regions with a delayed feedback, three
# subjects with disjoint coverage. Gradients of the window-unrolled graph
# against finite differences, training, and the prediction of the cells that
# were never recorded, which must beat the mean of the other subjects.
. "$(dirname "$0")/common.sh"
build_example visual_pathway

./brain gradcheck > gradcheck.txt || fail "gradcheck failed: $(tail -3 gradcheck.txt)"

./brain train --steps 1500 --checkpoint ck > train.log 2>&1 || fail "train: $(tail -5 train.log)"
grep -q '^trained steps=1500' train.log || fail "train did not finish: $(tail -3 train.log)"

# One eval: the recorded cells, then a line per held-out cell.
./brain eval --checkpoint ck \
  --heldout V2.m2=data/heldout/v2_m2.npy --head V2.m1 \
  --heldout V1.m3=data/heldout/v1_m3.npy --head V1.m1 > eval.txt ||
  fail "eval: $(cat eval.txt)"
awk '/^(LGN|V1|V2)\./ { n++; if ($NF + 0 < 0.8) bad = bad " " $1 "=" $NF }
     END { if (n != 7 || bad != "") { print "eval:" bad " (" n " sources)"; exit 1 } }' eval.txt ||
  fail "eval R^2 of the recorded cells: $(cat eval.txt)"
grep '^heldout ' eval.txt || true   # the figures, in the test log
# Each cell never recorded is predicted better than the mean of the other
# subjects' recordings of its region, and well in absolute terms.
awk '/^heldout / { n++
       for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
       if (!(v["r2"] + 0 > v["baseline_r2"] + 0 && v["r2"] + 0 > 0.5)) bad = bad " " $2 }
     END { if (n != 2 || bad != "") { print "held-out cells not predicted:" bad; exit 1 } }' \
  eval.txt || fail "held-out prediction: $(cat eval.txt)"
echo "visual_pathway: ok"
