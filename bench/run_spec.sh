#!/bin/sh
# Specialised training against --no-specialize and the PyTorch peer
# (../shared/bench/torch_aunn.py --cond film), side by side in one run: the
# model of bench/aunn_concat.lobe.in with film conditioning (8 regions x 4
# subjects, data in one cell), batch 256, hidden widths 64, 256 and 1024.
# Prints samples/s of each and the specialised speed-up over --no-specialize.
# Usage: bench/run_spec.sh [BUILD_DIR]   env: THREADS (default 1), STEPS (default 300)
work_name=bench_spec
. "$(dirname "$0")/common.sh"

printf '%-6s %14s %14s %14s %8s %8s\n' width spec/s no_spec/s torch/s speedup vs_torch
for hidden in 64 256 1024; do
  spec=$(make_spec "$hidden" film)
  "$build/bin/lobec" build "$spec" -o "$work/spec_$hidden" 2>"$work/lobec_$hidden.log"
  "$build/bin/lobec" build "$spec" --no-specialize -o "$work/plain_$hidden" 2>>"$work/lobec_$hidden.log"
  a=$(lobe_samples_per_s "$work/spec_$hidden")
  b=$(lobe_samples_per_s "$work/plain_$hidden")
  torch=$(peer_samples_per_s "$hidden" film)
  printf '%-6s %14.0f %14.0f %14.0f %8.2f %8.2f\n' "$hidden" "$a" "$b" "$torch" \
    "$(ratio "$a" "$b")" "$(ratio "$a" "$torch")"
done
