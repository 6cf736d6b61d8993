#!/bin/sh
# Runs make_leadfield --check on TVB's 76-region connectome, or skips (77)
# when the shared data is absent, as in a fresh clone.
# Usage: check_leadfield.sh MAKE_LEADFIELD DATA_DIR
zip=$2/tvb/connectivity_76.zip
if [ ! -f "$zip" ]; then
  echo "skip: $zip not found (the shared data lives beside the project)"
  exit 77
fi
# Every landmark region is in this connectome: a skipped one is a failure.
out=$("$1" --check "$zip")
status=$?
echo "$out"
if echo "$out" | grep -q '^skip:'; then
  echo "FAIL: $zip lacks a landmark region of make_leadfield --check"
  exit 1
fi
exit $status
