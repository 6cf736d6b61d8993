#!/bin/sh
# Builds lobe with ASan + UBSan in a separate tree and runs the tests labelled
# `sanitize` there: unit tests, golden diagnostics (every malformed spec) and
# IR, and the end-to-end runs (compiled models link the instrumented runtime).
# Usage: run_sanitized.sh SOURCE_DIR BUILD_DIR
set -eu
src=$1 build=$2
cmake -S "$src" -B "$build" -DLOBE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$build" -j "$(nproc)" >/dev/null
cd "$build"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --output-on-failure -L sanitize -j "$(nproc)"
