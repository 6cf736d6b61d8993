#!/bin/sh
# lobe against the PyTorch peer (../shared/bench/torch_aunn.py), side by side
# in one run, same model, same batch, same thread count. Prints samples/s of
# both and the ratio for hidden widths 64, 256 and 1024.
# Usage: bench/run.sh [BUILD_DIR]   env: THREADS (default 1), STEPS (default 300)
set -eu
build=$(cd "${1:-build}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
peer=$root/../shared/bench/torch_aunn.py
threads=${THREADS:-1}
steps=${STEPS:-300}
work=$build/bench
mkdir -p "$work"

if [ ! -f "$peer" ]; then
  echo "bench: $peer not found (it lives in ../shared beside the repository)" >&2
  exit 1
fi

# 16384 samples x 64 channels of noise, as the peer trains on.
/usr/bin/python3 -c "import numpy as np; np.save('$work/bench_data.npy', np.random.default_rng(0).standard_normal((16384, 64)).astype(np.float32))"

now() { date +%s.%N; }

# Seconds per step of `brain train`, startup excluded: the difference of a
# long and a short run over the difference of their step counts.
lobe_ms_per_step() {
  brain=$1
  t0=$(now); "$brain" train --steps 20 --threads "$threads" --checkpoint "$work/ckpt" >/dev/null 2>&1; t1=$(now)
  "$brain" train --steps $((steps + 20)) --threads "$threads" --checkpoint "$work/ckpt" >/dev/null 2>&1; t2=$(now)
  awk -v a="$t0" -v b="$t1" -v c="$t2" -v n="$steps" 'BEGIN { print ((c - b) - (b - a)) * 1000 / n }'
}

printf '%-6s %14s %14s %8s\n' width lobe_samples/s torch_samples/s ratio
for hidden in 64 256 1024; do
  sed "s/HIDDEN/$hidden/" "$root/bench/aunn_concat.lobe.in" > "$work/aunn_$hidden.lobe"
  # (the peer has 8 modules but data in one: lobec warns of 7 regions without data)
  "$build/bin/lobec" build "$work/aunn_$hidden.lobe" -o "$work/aunn_$hidden" 2>"$work/lobec_$hidden.log"
  ms=$(lobe_ms_per_step "$work/aunn_$hidden")
  lobe=$(awk -v ms="$ms" 'BEGIN { print 256 * 1000 / ms }')
  torch=$(OMP_NUM_THREADS=$threads /usr/bin/python3 "$peer" --threads "$threads" --hidden "$hidden" \
          --steps "$steps" --cond concat | sed -n 's/.*samples_per_s=\([0-9.]*\).*/\1/p')
  printf '%-6s %14.0f %14.0f %8.2f\n' "$hidden" "$lobe" "$torch" "$(awk -v a="$lobe" -v b="$torch" 'BEGIN { print a / b }')"
done
