#!/bin/sh
# Fuzzes the data readers (fuzz_data.c) with libFuzzer for a bounded time.
# Compiles the harness with runtime/data/*.c using clang-19 (the libraries
# under the readers stay uninstrumented), then fuzzes a scratch copy of the
# seeds in tests/fuzz/corpus_data (see gen_data_seeds.c). Fails on any crash,
# leak, sanitizer report or timeout; exits 77 (skipped) without clang-19.
# INCLUDES and LIBS are what CMake found for EDFlib and niftilib; matio,
# HDF5 and libzip come from pkg-config.
# Usage: run_fuzz_data.sh SOURCE_DIR WORK_DIR SECONDS "INCLUDES" "LIBS"
set -u
src=$1 work=$2 seconds=$3 includes=$4 libs=$5
cc=clang-19

if ! command -v "$cc" >/dev/null 2>&1; then
  echo "run_fuzz_data.sh: $cc not found; skipping (scripts/install-deps.sh installs it)"
  exit 77
fi
mkdir -p "$work" || exit 2

fuzzer=$work/fuzz_data
sources="$src/tests/fuzz/fuzz_data.c $src/runtime/data/*.c"   # globbed where used

# Rebuild only when a source or header changed: compiling takes a while.
stale() {
  [ -x "$fuzzer" ] || return 0
  for f in $sources "$src"/runtime/data/data.h "$src"/runtime/*.h "$0"; do
    [ "$f" -nt "$fuzzer" ] && return 0
  done
  return 1
}

if stale; then
  echo "run_fuzz_data.sh: compiling $fuzzer"
  # shellcheck disable=SC2086,SC2046  # word lists of paths and flags without spaces
  "$cc" -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$src/runtime" -I"$src/runtime/data" $includes \
    $(pkg-config --cflags matio hdf5 libzip) \
    -o "$fuzzer" $sources $libs $(pkg-config --libs matio hdf5 libzip) -lm || exit 1
fi

# libFuzzer adds what it finds to the first corpus directory: a scratch copy.
corpus=$work/corpus
rm -rf "$corpus"
mkdir -p "$corpus"
cp "$src"/tests/fuzz/corpus_data/* "$corpus"/ || exit 2

# The harness writes its files under TMPDIR=$work; a crashed run leaves them.
rm -rf "$work"/lobe-fuzz-*
log=$work/fuzz.log
echo "run_fuzz_data.sh: fuzzing for ${seconds}s (log: $log)"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  LSAN_OPTIONS=suppressions="$src/tests/fuzz/lsan_data.supp" TMPDIR="$work" \
  "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 \
  -artifact_prefix="$work/" "$corpus" >"$log" 2>&1
status=$?
if [ "$status" -ne 0 ]; then
  tail -n 60 "$log"
  echo "run_fuzz_data.sh: FAILED (exit $status); the input is the crash-/leak-/timeout-"
  echo "file named above under $work/ (its first byte picks the reader: fuzz_data.c)"
  exit 1
fi
grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log"
echo "run_fuzz_data.sh: no crash in ${seconds}s; corpus now $(ls "$corpus" | wc -l) inputs"
