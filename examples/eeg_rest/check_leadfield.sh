#!/bin/sh
# Runs make_leadfield --check on TVB's 76-region connectome, or skips (77)
# when the shared data is absent, as in a fresh clone.
# Usage: check_leadfield.sh MAKE_LEADFIELD DATA_DIR
zip=$2/tvb/connectivity_76.zip
if [ ! -f "$zip" ]; then
  echo "skip: $zip not found (the shared data lives beside the project)"
  exit 77
fi
exec "$1" --check "$zip"
