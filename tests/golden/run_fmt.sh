#!/bin/sh
# `lobec fmt` round trips. For every spec of the examples, the golden IR tests
# and the benchmarks (bench/*.lobe.in with HIDDEN made a number), the
# canonical form must be canonical itself (fmt is idempotent) and mean the
# same (`lobec build --emit=ast` of both agrees, positions aside); and every
# example and benchmark must already be canonical (`lobec fmt --check`).
# Usage: run_fmt.sh LOBEC SRC_DIR
set -u
lobec=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
count=0
failed=0

fail() {
  echo "FAIL $1: $2"
  failed=$((failed + 1))
}

# The AST dump without the program's path and the line:column of each node.
ast() {
  "$lobec" build "$1" --emit=ast >"$work/raw" 2>"$work/err" &&
    sed -E '1d; s/^( *)[0-9]+:[0-9]+ /\1/' "$work/raw"
}

round_trip() {
  name=$1 spec=$2
  count=$((count + 1))
  if ! "$lobec" fmt "$spec" >"$work/once.lobe"; then
    fail "$name" "lobec fmt failed"
    return
  fi
  "$lobec" fmt "$work/once.lobe" >"$work/twice.lobe"
  if ! cmp -s "$work/once.lobe" "$work/twice.lobe"; then
    fail "$name" "not idempotent (- once, + twice):"
    diff -u "$work/once.lobe" "$work/twice.lobe"
    return
  fi
  if ! ast "$spec" >"$work/before.ast" || ! ast "$work/once.lobe" >"$work/after.ast"
  then
    fail "$name" "lobec build --emit=ast failed:"
    cat "$work/err"
  elif ! cmp -s "$work/before.ast" "$work/after.ast"; then
    fail "$name" "the AST changed (- before, + after):"
    diff -u "$work/before.ast" "$work/after.ast"
  fi
}

for spec in "$src"/examples/*/*.lobe; do
  round_trip "${spec#"$src"/}" "$spec"
  "$lobec" fmt --check "$spec" >/dev/null ||
    fail "${spec#"$src"/}" "not canonical: run lobec fmt -o $spec $spec"
done
for spec in "$src"/tests/golden/ir/*.lobe; do
  round_trip "${spec#"$src"/}" "$spec"
done
for template in "$src"/bench/*.lobe.in; do
  sed 's/HIDDEN/64/g' "$template" >"$work/bench.lobe"
  round_trip "${template#"$src"/}" "$work/bench.lobe"
  "$lobec" fmt --check "$work/bench.lobe" >/dev/null ||
    fail "${template#"$src"/}" "not canonical"
done
echo "fmt: $count specs, $failed failures"
[ "$count" -gt 0 ] && [ "$failed" -eq 0 ]
