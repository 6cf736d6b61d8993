#!/bin/sh
# check_fc_report.sh FC_REPORT DATA_DIR — runs fc_report on the real HCP data
# (test 102816, train 101309,102311) and checks its figures and its errors.
# Exits 77 (skipped) when DATA_DIR/hcp is absent, as in a fresh clone.
fc_report=$1
data=$2
if [ ! -d "$data/hcp" ]; then
  echo "SKIP: $data/hcp is absent (the shared HCP data is not part of the project)"
  exit 77
fi
work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"' EXIT
status=0
fail() { echo "FAIL: $*"; status=1; }

# value NAME: the figure on the line "NAME VALUE" of the report
value() { awk -v name="$1" '$1 == name { print $2 }' "$work/out"; }
in_unit_interval() { awk -v x="$1" 'BEGIN { exit !(x != "" && x > -1 && x < 1) }'; }

"$fc_report" --data "$data" --test 102816 --train 101309,102311 >"$work/out" 2>"$work/err" \
  || fail "fc_report exited $?: $(cat "$work/err")"
cat "$work/out"
for name in sc_fc sc_log_fc group_fc; do
  in_unit_interval "$(value $name)" ||
    fail "$name: expected a value in (-1, 1), found '$(value $name)'"
done
# Measured on this data: group_fc ~0.80 against ~0.27 (raw SC) and ~0.34 (log SC).
awk -v g="$(value group_fc)" -v s="$(value sc_fc)" -v l="$(value sc_log_fc)" \
  'BEGIN { exit !(g > s && g > l) }' || fail "expected group_fc above both SC baselines"

# A predicted series: 94 columns, any number (>= 3) of frames.
awk 'BEGIN { for (t = 0; t <= 20; t++) { line = "";
       for (r = 1; r <= 94; r++) line = line (r > 1 ? "," : "") (t ? sin(t * r * 0.37) : "r" r);
       print line } }' >"$work/pred.csv"
"$fc_report" --data "$data" --test 102816 --train 101309,102311 --predicted "$work/pred.csv" \
  >"$work/out" 2>"$work/err" || fail "with --predicted: exited $?: $(cat "$work/err")"
in_unit_interval "$(value model_fc)" ||
  fail "model_fc: expected a value in (-1, 1), found '$(value model_fc)'"

# expect_error WHAT ARGS...: fc_report must exit 2 with a message containing WHAT
expect_error() {
  what=$1; shift
  "$fc_report" "$@" >/dev/null 2>"$work/err"
  rc=$?
  [ $rc -eq 2 ] || fail "$*: expected exit 2, found $rc"
  grep -q -- "$what" "$work/err" || fail "$*: expected '$what' in: $(cat "$work/err")"
}
printf 'a,b,c\n1,2,3\n2,3,5\n3,5,8\n' >"$work/narrow.csv"
head -3 "$work/pred.csv" >"$work/short.csv"
expect_error "expected 94 regions, found 3" --data "$data" --test 102816 --train 101309 \
  --predicted "$work/narrow.csv"
expect_error "expected at least 3 frames, found 2" --data "$data" --test 102816 --train 101309 \
  --predicted "$work/short.csv"
expect_error "hcp/999999/TC_rsfMRI_REST1_LR.mat" --data "$data" --test 102816 --train 999999
expect_error "must not be a train subject" --data "$data" --test 102816 --train 102816
expect_error "expected --data, --test and --train" --data "$data" --test 102816
exit $status
