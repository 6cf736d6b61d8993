# Sourced by run_diag.sh, run_ir.sh and run_graph.sh once $lobec and $dir
# are set: makes $lobec absolute, enters $dir, and sets up the scratch file
# $out and the counters. Usage of the callers: run_*.sh LOBEC DIR
case $lobec in
  /*) ;;
  */*) lobec=$(pwd)/$lobec ;;  # still found after the cd below
esac
cd "$dir" || exit 2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
count=0
failed=0

# expect_golden NAME WHAT [EXT]: $out must equal NAME.EXT (EXT: expected);
# with LOBE_UPDATE_GOLDEN=1 it first becomes NAME.EXT.
expect_golden() {
  golden=$1.${3:-expected}
  [ "${LOBE_UPDATE_GOLDEN:-0}" = 1 ] && cp "$out" "$golden"
  if ! cmp -s "$golden" "$out"; then
    echo "FAIL $1: $2 differs from $golden (- expected, + actual):"
    diff -u "$golden" "$out"
    failed=$((failed + 1))
  fi
}
