#!/bin/sh
# Mutation test: lobec must survive mutated and truncated versions of every
# example, stdlib module and golden spec (examples/, stdlib/, tests/golden/).
# LOBE_MUTATE (mutate.c) makes 20 truncations and 40 random edits of each
# file, from a generator seeded by the file's text, and puts every one
# through the front end in-process as `lobec check`, `graph` and `fmt` do.
# A sample of about 120 of them (every Kth) then also goes through the lobec
# executable, whose start-up (~20 ms, ~80 ms under ASan) rules out all:
# `lobec check`, `lobec fmt` (and `lobec graph` when the spec checks) must
# exit with 0 or 1 — never with a signal or >= 2, never with a sanitizer
# report — and a 1 must come with an error line.
# Usage: run_mutate.sh LOBEC LOBE_MUTATE SOURCE_DIR
set -u
lobec=$1 mutate=$2 src=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
count=0
failed=0

fail() {
  echo "FAIL $1: $2"
  head -c 2000 "$work/err"
  case $1 in
    "$work"/*) echo "--- the mutant:"; head -c 2000 "$1"; echo ;;  # gone after the run
  esac
  failed=$((failed + 1))
}

# survives FILE COMMAND: `lobec COMMAND FILE` keeps the rules; its status.
survives() {
  count=$((count + 1))
  "$lobec" "$2" "$1" >/dev/null 2>"$work/err"
  status=$?
  if grep -Eq 'Sanitizer|runtime error' "$work/err"; then
    fail "$1" "lobec $2 made a sanitizer report"
  elif [ "$status" -gt 1 ]; then
    fail "$1" "lobec $2 exited with status $status"
  elif [ "$status" -eq 1 ] && ! grep -q 'error' "$work/err"; then
    fail "$1" "lobec $2 exited with 1 without printing an error"
  fi
  return "$status"
}

files=$(find "$src/examples" "$src/stdlib" "$src/tests/golden" -name '*.lobe' \
  2>/dev/null | LC_ALL=C sort)
[ -n "$files" ] || { echo "run_mutate.sh: no .lobe files under $src"; exit 1; }

every=$(($(echo "$files" | wc -l) * 60 / 120))
[ "$every" -ge 10 ] || every=10
# shellcheck disable=SC2086  # $files is a list of paths without blanks
if ! "$mutate" -w "$work" -k "$every" $files; then
  failed=$((failed + 1))
  for f in "$work"/failed-*.lobe; do
    [ -e "$f" ] && { echo "--- $(basename "$f"):"; head -c 2000 "$f"; echo; }
  done
fi

for spec in "$work"/sample-*.lobe; do
  [ -e "$spec" ] || continue
  survives "$spec" check && survives "$spec" graph
  survives "$spec" fmt
done
echo "mutations: $count runs of lobec, $failed failures"
[ "$failed" -eq 0 ]
