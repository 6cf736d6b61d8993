# Sourced by run_diag.sh and run_ir.sh once $lobec and $dir are set: makes
# $lobec absolute, enters $dir, and sets up the scratch file $out and the
# counters. Usage of the callers: run_*.sh LOBEC DIR
case $lobec in
  /*) ;;
  */*) lobec=$(pwd)/$lobec ;;  # still found after the cd below
esac
cd "$dir" || exit 2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
count=0
failed=0

# expect_golden NAME WHAT: $out must equal NAME.expected; with
# LOBE_UPDATE_GOLDEN=1 it first becomes NAME.expected.
expect_golden() {
  [ "${LOBE_UPDATE_GOLDEN:-0}" = 1 ] && cp "$out" "$1.expected"
  if ! cmp -s "$1.expected" "$out"; then
    echo "FAIL $1: $2 differs from $1.expected (- expected, + actual):"
    diff -u "$1.expected" "$out"
    failed=$((failed + 1))
  fi
}
