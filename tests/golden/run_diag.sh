#!/bin/sh
# Golden diagnostics. For every NAME.lobe in DIR, `LOBEC check NAME.lobe`, run
# in DIR, must exit with status 1 and print exactly NAME.expected on stderr.
# A NAME.args file replaces `check NAME.lobe` with its words (for errors that
# only `build` finds, or a spec that cannot be read). Every code that
# `LOBEC explain --list` lists must appear, as error[E...] or warning[W...],
# in some .expected file, so that each is tested.
# Imports find the standard modules through LOBE_STDLIB, set to the source
# tree's stdlib/ as a path relative to DIR (tests/golden/diag), so that
# messages naming it read the same on every machine.
# Usage: run_diag.sh LOBEC DIR
# With LOBE_UPDATE_GOLDEN=1 the .expected files are rewritten from the output.
set -u
lobec=$1
dir=$2
. "$(dirname "$0")/common.sh"
LOBE_STDLIB=../../../stdlib
[ -f "$LOBE_STDLIB/std/encodings.lobe" ] || { echo "run_diag.sh: no stdlib at $dir/$LOBE_STDLIB"; exit 1; }
export LOBE_STDLIB
for spec in *.lobe; do
  [ -e "$spec" ] || { echo "run_diag.sh: no .lobe files in $dir"; exit 1; }
  name=${spec%.lobe}
  count=$((count + 1))
  args="check $spec"
  [ -f "$name.args" ] && args=$(cat "$name.args")
  # shellcheck disable=SC2086  # the words of $args are separate arguments
  "$lobec" $args >/dev/null 2>"$out"
  status=$?
  if [ "$status" -ne 1 ]; then
    echo "FAIL $name: exit status $status, expected 1"
    cat "$out"
    failed=$((failed + 1))
  else
    expect_golden "$name" stderr
  fi
done
echo "golden diagnostics: $((count - failed)) of $count passed"

codes=$("$lobec" explain --list | cut -d' ' -f1)
[ -n "$codes" ] || { echo "FAIL: lobec explain --list printed no codes"; exit 1; }
"$lobec" explain E9999 2>/dev/null
[ $? -eq 2 ] || { echo "FAIL: lobec explain E9999 must exit with 2"; failed=$((failed + 1)); }
for code in $codes; do
  case $code in
    W*) level=warning ;;
    *) level=error ;;
  esac
  if ! cat ./*.expected | grep -qF "$level[$code]"; then
    echo "FAIL $code: no golden case prints $level[$code]"
    failed=$((failed + 1))
  fi
done
[ "$failed" -eq 0 ]
