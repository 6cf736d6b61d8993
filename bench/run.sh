#!/bin/sh
# lobe against the PyTorch peer (../shared/bench/torch_aunn.py --cond concat),
# side by side in one run, same model, same batch, same thread count. Prints
# samples/s of both and the ratio for hidden widths 64, 256 and 1024.
# Usage: bench/run.sh [BUILD_DIR]   env: THREADS (default 1), STEPS (default 300)
work_name=bench
. "$(dirname "$0")/common.sh"

printf '%-6s %14s %14s %8s\n' width lobe_samples/s torch_samples/s ratio
for hidden in 64 256 1024; do
  spec=$(make_spec "$hidden" concat)
  # (the peer has 8 modules but data in one: lobec warns of 7 regions without data)
  "$build/bin/lobec" build "$spec" -o "$work/aunn_$hidden" 2>"$work/lobec_$hidden.log"
  lobe=$(lobe_samples_per_s "$work/aunn_$hidden")
  torch=$(peer_samples_per_s "$hidden" concat)
  printf '%-6s %14.0f %14.0f %8.2f\n' "$hidden" "$lobe" "$torch" "$(ratio "$lobe" "$torch")"
done
