# Shared by the e2e tests (sourced): arguments, a scratch folder, checks.
# Every test is run as: sh NAME.sh LOBEC SOURCE_DIR WORK_DIR
set -eu
lobec=$1
src=$2
work=$3
bin=$(dirname "$lobec")
rm -rf "$work"
mkdir -p "$work"
cd "$work"

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# expect_status N CMD...: runs CMD, which must exit with status N.
expect_status() {
  want=$1
  shift
  set +e
  "$@" >"$work/last.out" 2>"$work/last.err"
  got=$?
  set -e
  [ "$got" -eq "$want" ] || {
    cat "$work/last.out" "$work/last.err" >&2
    fail "$* exited $got, expected $want"
  }
}

# The single_region example, data made and spec built into ./brain.
build_single_region() {
  "$bin/single_region_data" "$work/data"
  cp "$src/examples/single_region/single_region.lobe" "$work/"
  "$lobec" build "$work/single_region.lobe" -o "$work/brain"
}
