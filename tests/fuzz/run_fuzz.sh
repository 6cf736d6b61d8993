#!/bin/sh
# Fuzzes the front end (fuzz_front.c) with libFuzzer for a bounded time.
# Compiles the harness with the front-end sources and the re2c/Lemon output of
# the main build (GEN_DIR) using clang-19, then fuzzes a scratch copy of the
# seeds: tests/fuzz/corpus plus every examples/*/*.lobe, stdlib/std/*.lobe
# and tests/golden/graph/*.lobe; tests/golden/diag is read as a second,
# read-only corpus. Fails on any crash, leak, sanitizer report or timeout;
# exits 77 (skipped) without clang-19.
# Usage: run_fuzz.sh SOURCE_DIR GEN_DIR WORK_DIR [SECONDS]
set -u
src=$1 gen=$2 work=$3 seconds=${4:-60}
cc=clang-19

if ! command -v "$cc" >/dev/null 2>&1; then
  echo "run_fuzz.sh: $cc not found; skipping (scripts/install-deps.sh installs it)"
  exit 77
fi
for f in "$gen/lexer.c" "$gen/grammar.c" "$gen/grammar.h"; do
  [ -f "$f" ] || { echo "run_fuzz.sh: $f missing: build lobe_front first"; exit 2; }
done
mkdir -p "$work" || exit 2

fuzzer=$work/fuzz_front
sources="$src/tests/fuzz/fuzz_front.c $src/compiler/diag.c $src/compiler/ast.c
$src/compiler/sema.c $src/compiler/import.c $gen/lexer.c $gen/grammar.c"

# Rebuild only when a source or header changed: compiling takes a while.
stale() {
  [ -x "$fuzzer" ] || return 0
  for f in $sources "$src/compiler/front.h" "$gen/grammar.h" "$0"; do
    [ "$f" -nt "$fuzzer" ] && return 0
  done
  return 1
}

if stale; then
  echo "run_fuzz.sh: compiling $fuzzer"
  # shellcheck disable=SC2086  # $sources is a list of paths without spaces
  "$cc" -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -DLOBE_STDLIB_DIR="\"$src/stdlib\"" -I"$src/compiler" -I"$gen" \
    -o "$fuzzer" $sources -lm || exit 1
fi

# libFuzzer adds what it finds to the first corpus directory: a scratch copy.
corpus=$work/corpus
rm -rf "$corpus"
mkdir -p "$corpus"
cp "$src"/tests/fuzz/corpus/* "$corpus"/ || exit 2
for spec in "$src"/examples/*/*.lobe; do
  [ -e "$spec" ] && cp "$spec" "$corpus/example_$(basename "$spec")"
done
for spec in "$src"/stdlib/std/*.lobe "$src"/tests/golden/graph/*.lobe; do
  [ -e "$spec" ] && cp "$spec" "$corpus/$(basename "$(dirname "$spec")")_$(basename "$spec")"
done

log=$work/fuzz.log
echo "run_fuzz.sh: fuzzing for ${seconds}s (log: $log)"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 \
  -dict="$src/tests/fuzz/lobe.dict" -artifact_prefix="$work/" \
  "$corpus" "$src/tests/golden/diag" >"$log" 2>&1
status=$?
if [ "$status" -ne 0 ]; then
  tail -n 60 "$log"
  echo "run_fuzz.sh: FAILED (exit $status); the input is the crash-/leak-/timeout-"
  echo "file named above under $work/"
  exit 1
fi
grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log"
echo "run_fuzz.sh: no crash in ${seconds}s; corpus now $(ls "$corpus" | wc -l) inputs"
