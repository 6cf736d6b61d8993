#!/bin/sh
# `lobec fmt` round trips. For every spec of the stdlib and of the examples
# (at any depth), of the golden IR tests and of the benchmarks
# (bench/*.lobe.in with HIDDEN made a number), the canonical form must be
# canonical itself (fmt is idempotent) and, for a whole program, mean the same
# (`lobec build --emit=ast` of both agrees, positions aside; a module, which
# only an import gives a meaning, is compared by the unit test test_fmt); and
# every stdlib module, example and benchmark must already be canonical
# (`lobec fmt --check`).
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

# $work/tree: the .lobe files of folder $1 at any depth, so that a formatted
# copy of a spec there imports what the original imports.
copy_specs() {
  rm -rf "$work/tree"
  (cd "$1" && find . -name '*.lobe') | while IFS= read -r f; do
    mkdir -p "$work/tree/${f%/*}" && cp "$1/$f" "$work/tree/$f"
  done
}

# The AST of spec $2 and of its canonical form $3 agree.
same_ast() {
  name=$1 spec=$2 once=$3
  "$lobec" check "$spec" >/dev/null 2>&1 || return 0   # a module
  copy_specs "$(dirname "$spec")"
  copy="$work/tree/$(basename "$spec")"
  cp "$once" "$copy"
  if ! ast "$spec" >"$work/before.ast" || ! ast "$copy" >"$work/after.ast"; then
    fail "$name" "lobec build --emit=ast failed:"
    cat "$work/err"
  elif ! cmp -s "$work/before.ast" "$work/after.ast"; then
    fail "$name" "the AST changed (- before, + after):"
    diff -u "$work/before.ast" "$work/after.ast"
  fi
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
  same_ast "$name" "$spec" "$work/once.lobe"
}

# Every .lobe file under the stdlib and the examples, one a line.
for top in stdlib examples; do
  [ -d "$src/$top" ] && find "$src/$top" -name '*.lobe'
done | sort >"$work/specs"
while IFS= read -r spec; do
  round_trip "${spec#"$src"/}" "$spec"
  "$lobec" fmt --check "$spec" >/dev/null ||
    fail "${spec#"$src"/}" "not canonical: run lobec fmt -o $spec $spec"
done <"$work/specs"
for spec in "$src"/tests/golden/ir/*.lobe; do
  round_trip "${spec#"$src"/}" "$spec"
done
mkdir "$work/bench"
for template in "$src"/bench/*.lobe.in; do
  sed 's/HIDDEN/64/g' "$template" >"$work/bench/bench.lobe"
  round_trip "${template#"$src"/}" "$work/bench/bench.lobe"
  "$lobec" fmt --check "$work/bench/bench.lobe" >/dev/null ||
    fail "${template#"$src"/}" "not canonical"
done
echo "fmt: $count specs, $failed failures"
[ "$count" -gt 0 ] && [ "$failed" -eq 0 ]
