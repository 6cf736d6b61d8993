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

# build_example NAME: the example NAME, data made and spec built into ./brain.
build_example() {
  "$bin/$1_data" "$work/data"
  cp "$src/examples/$1/$1.lobe" "$work/"
  "$lobec" build "$work/$1.lobe" -o "$work/brain"
}
