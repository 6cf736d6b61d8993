#!/bin/sh
# Specialised training against --no-specialize and the PyTorch peer
# (../shared/bench/torch_aunn.py --cond film), side by side in one run: the
# model of bench/aunn_concat.lobe.in with film conditioning (8 regions x 4
# subjects, data in one cell), batch 256, hidden widths 64, 256 and 1024.
# Prints samples/s of each and the specialised speed-up over --no-specialize.
# Usage: bench/run_spec.sh [BUILD_DIR]   env: THREADS (default 1), STEPS (default 300)
set -eu
build=$(cd "${1:-build}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
peer=$root/../shared/bench/torch_aunn.py
threads=${THREADS:-1}
steps=${STEPS:-300}
work=$build/bench_spec
mkdir -p "$work"

if [ ! -f "$peer" ]; then
  echo "bench: $peer not found (it lives in ../shared beside the repository)" >&2
  exit 1
fi

/usr/bin/python3 -c "import numpy as np; np.save('$work/bench_data.npy', np.random.default_rng(0).standard_normal((16384, 64)).astype(np.float32))"

now() { date +%s.%N; }

# Samples per second of `brain train`, startup excluded: the difference of a
# long and a short run over the difference of their step counts.
lobe_samples_per_s() {
  brain=$1
  t0=$(now); "$brain" train --steps 20 --threads "$threads" --checkpoint "$work/ckpt" >/dev/null 2>&1; t1=$(now)
  "$brain" train --steps $((steps + 20)) --threads "$threads" --checkpoint "$work/ckpt" >/dev/null 2>&1; t2=$(now)
  awk -v a="$t0" -v b="$t1" -v c="$t2" -v n="$steps" 'BEGIN { print 256 * n / ((c - b) - (b - a)) }'
}

printf '%-6s %14s %14s %14s %8s\n' width spec/s no_spec/s torch/s speedup
for hidden in 64 256 1024; do
  spec=$work/aunn_film_$hidden.lobe
  sed "s/HIDDEN/$hidden/; s/condition concat/condition film/" "$root/bench/aunn_concat.lobe.in" > "$spec"
  "$build/bin/lobec" build "$spec" -o "$work/spec_$hidden" 2>"$work/lobec_$hidden.log"
  "$build/bin/lobec" build "$spec" --no-specialize -o "$work/plain_$hidden" 2>>"$work/lobec_$hidden.log"
  a=$(lobe_samples_per_s "$work/spec_$hidden")
  b=$(lobe_samples_per_s "$work/plain_$hidden")
  torch=$(OMP_NUM_THREADS=$threads /usr/bin/python3 "$peer" --threads "$threads" --hidden "$hidden" \
          --steps "$steps" --cond film | sed -n 's/.*samples_per_s=\([0-9.]*\).*/\1/p')
  printf '%-6s %14.0f %14.0f %14.0f %8.2f\n' "$hidden" "$a" "$b" "$torch" \
    "$(awk -v a="$a" -v b="$b" 'BEGIN { print a / b }')"
done
