#!/bin/sh
# The examples of the language reference. Every ```lobe block of
# docs/language.md is a complete spec: `lobec check` must accept it (exit
# status 0) and print nothing, not even a warning. `lobec check` reads no
# data file, so the examples need none. Fragments are ```text blocks.
# Usage: run_doc_examples.sh LOBEC SRC_DIR
set -u
lobec=$1
src=$2
doc=$src/docs/language.md
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
LOBE_STDLIB=$src/stdlib
export LOBE_STDLIB

# Each block into work/exampleN.lobe, N from 1, with its first line number.
awk -v dir="$work" '
  /^```lobe$/ { n++; file = dir "/example" n ".lobe"; print NR + 1 > (dir "/example" n ".line"); next }
  /^```/ && file { close(file); file = ""; next }
  file { print > file }
' "$doc"

count=0
failed=0
for spec in "$work"/example*.lobe; do
  [ -e "$spec" ] || { echo "run_doc_examples.sh: no \`\`\`lobe blocks in $doc"; exit 1; }
  count=$((count + 1))
  line=$(cat "${spec%.lobe}.line")
  if ! "$lobec" check "$spec" >"$work/out" 2>&1 || [ -s "$work/out" ]; then
    echo "FAIL: the example at $doc:$line:"
    cat "$work/out"
    failed=$((failed + 1))
  fi
done
echo "language reference examples: $((count - failed)) of $count passed"
[ "$failed" -eq 0 ]
