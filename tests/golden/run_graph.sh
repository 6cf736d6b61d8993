#!/bin/sh
# Golden region graphs (docs/graph.md). For every NAME.lobe in DIR,
# `LOBEC graph NAME.lobe`, run in DIR, must succeed and print exactly
# NAME.dot, and `-o FILE.dot` must write the same text. Then the other
# paths of the command: a spec with errors draws nothing and exits with 1,
# an unknown output extension is a usage error (2), a missing Graphviz is an
# error naming its package (1), and with Graphviz installed `-o FILE.svg`
# renders a picture (skipped, with a message, without it).
# Usage: run_graph.sh LOBEC DIR
# With LOBE_UPDATE_GOLDEN=1 the .dot files are rewritten from the output.
set -u
lobec=$1
dir=$2
. "$(dirname "$0")/common.sh"
work=$(mktemp -d)
trap 'rm -f "$out"; rm -rf "$work"' EXIT

fail() {
  echo "FAIL $1: $2"
  [ -s "$work/err" ] && cat "$work/err"
  failed=$((failed + 1))
}

for spec in *.lobe; do
  [ -e "$spec" ] || { echo "run_graph.sh: no .lobe files in $dir"; exit 1; }
  name=${spec%.lobe}
  count=$((count + 1))
  if ! "$lobec" graph "$spec" >"$out" 2>"$work/err"; then
    fail "$name" "lobec graph failed"
    continue
  fi
  [ -s "$work/err" ] && fail "$name" "lobec graph printed diagnostics"
  expect_golden "$name" "dot text" dot
  if ! "$lobec" graph "$spec" -o "$work/$name.dot" 2>"$work/err" ||
    ! cmp -s "$out" "$work/$name.dot"; then
    fail "$name" "-o $name.dot did not write what standard output shows"
  fi
done

# expect_status WHAT STATUS PATTERN COMMAND...: the command must exit with
# STATUS and print PATTERN (grep -E) on standard error.
expect_status() {
  what=$1 want=$2 pattern=$3
  shift 3
  count=$((count + 1))
  "$@" >"$out" 2>"$work/err"
  status=$?
  if [ "$status" -ne "$want" ]; then
    fail "$what" "exit status $status, expected $want"
  elif ! grep -Eq "$pattern" "$work/err"; then
    fail "$what" "standard error does not match '$pattern'"
  elif [ "$want" -ne 0 ] && [ -s "$out" ]; then
    fail "$what" "printed a graph despite failing"
  fi
}

spec=$(ls ./*.lobe | head -n 1)
printf 'subjects m1\nregion V1 : nowhere\n' >"$work/bad.lobe"
expect_status "spec with errors" 1 "error\[E[0-9]+\]" "$lobec" graph "$work/bad.lobe"
expect_status "unknown extension" 2 "OUT.svg" "$lobec" graph "$spec" -o "$work/g.txt"
mkdir "$work/empty"
expect_status "no Graphviz" 1 "graphviz.*\.dot" \
  env PATH="$work/empty" "$lobec" graph "$spec" -o "$work/missing.svg"
[ -e "$work/missing.svg" ] && fail "no Graphviz" "wrote missing.svg anyway"

if command -v dot >/dev/null 2>&1; then
  count=$((count + 1))
  if ! "$lobec" graph "$spec" -o "$work/g.svg" >"$out" 2>"$work/err"; then
    fail "render svg" "lobec graph -o g.svg failed"
  elif ! grep -q "<svg" "$work/g.svg"; then
    fail "render svg" "g.svg is not SVG"
  fi
else
  echo "run_graph.sh: Graphviz's dot not found; skipping the SVG render"
fi

echo "golden graphs: $((count - failed)) of $count passed"
[ "$failed" -eq 0 ]
