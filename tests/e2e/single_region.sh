# The example end to end: compile, train, fit, predict, gradcheck, rebinding.
. "$(dirname "$0")/common.sh"
build_example single_region

./brain info > info.txt
grep -q "V1.m1" info.txt || fail "info does not list source V1.m1"

./brain gradcheck > gradcheck.txt || fail "gradcheck failed: $(tail -3 gradcheck.txt)"
tail -1 gradcheck.txt | grep -q '^gradcheck: max_rel_err=' || fail "gradcheck's last line"

./brain train --steps 1500 --checkpoint ck > train.log 2>&1 || fail "train: $(tail -5 train.log)"
loss=$(sed -n 's/^trained steps=1500 loss=\([0-9.e+-]*\).*/\1/p' train.log)
[ -n "$loss" ] || fail "no final line in train.log: $(tail -3 train.log)"
awk -v l="$loss" 'BEGIN { exit !(l < 0.1) }' || fail "loss $loss after 1500 steps, want < 0.1"

./brain eval --checkpoint ck > eval.txt || fail "eval"
# every source fits: R^2 above 0.9
awk '/^V1\./ { n++; if ($NF + 0 < 0.9) bad = bad " " $1 "=" $NF }
     END { if (n != 2 || bad != "") { print "eval:" bad " (" n " sources)"; exit 1 } }' eval.txt ||
  fail "eval R^2: $(cat eval.txt)"

./brain predict --checkpoint ck --region V1 --subject m2 --from 1 --to 2 -o pred.csv
head -1 pred.csv | grep -q '^t,ch0,ch1,ch2,ch3,ch4,ch5$' || fail "predict header: $(head -1 pred.csv)"
rows=$(($(wc -l < pred.csv) - 1))
[ "$rows" -eq 100 ] || fail "predict wrote $rows rows for 1 s at 100 Hz, want 100"

# The same executable on another recording, without recompiling.
./brain train --steps 300 --data V1.m1=data/v1_m1_alt.csv --checkpoint ck_alt > alt.log 2>&1 ||
  fail "train with --data: $(tail -3 alt.log)"
grep -q '^trained steps=300' alt.log || fail "train with --data did not finish"

# A bad rebinding is an error naming the file, and leaves the checkpoint alone.
before=$(cat ck/* | cksum)
printf 'a,b\n1,2\n' > two_channels.csv
expect_status 2 ./brain train --steps 10 --data V1.m1=two_channels.csv --checkpoint ck --resume
grep -q "two_channels.csv" last.err || fail "error does not name the file: $(cat last.err)"
[ "$(cat ck/* | cksum)" = "$before" ] || fail "checkpoint changed by a failed run"
echo "single_region: ok (loss $loss)"
