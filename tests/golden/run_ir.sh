#!/bin/sh
# Golden IR dumps. For every NAME.lobe in DIR, `LOBEC build NAME.lobe
# --emit=ir`, run in DIR, must succeed and print exactly NAME.expected: the
# lowered, differentiated and optimised entry points of the model.
# Usage: run_ir.sh LOBEC DIR
# With LOBE_UPDATE_GOLDEN=1 the .expected files are rewritten from the output.
set -u
lobec=$1
dir=$2
. "$(dirname "$0")/common.sh"
for spec in *.lobe; do
  name=${spec%.lobe}
  count=$((count + 1))
  if ! "$lobec" build "$spec" --emit=ir >"$out"; then
    echo "FAIL $name: lobec build --emit=ir failed"
    failed=$((failed + 1))
    continue
  fi
  expect_golden "$name" IR
done
echo "golden IR: $((count - failed)) of $count passed"
[ "$failed" -eq 0 ]
