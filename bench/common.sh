# Shared by bench/run.sh and bench/run_spec.sh (sourced, after setting
# `work_name`): the build folder, the peer, the data, and the two timers.
# env: THREADS (default 1), STEPS (default 300)
set -eu
build=$(cd "${1:-build}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
peer=$root/../shared/bench/torch_aunn.py
threads=${THREADS:-1}
steps=${STEPS:-300}
work=$build/$work_name
mkdir -p "$work"

if [ ! -f "$peer" ]; then
  echo "bench: $peer not found (it lives in ../shared beside the repository)" >&2
  exit 1
fi

# 16384 samples x 64 channels of noise, as the peer trains on.
/usr/bin/python3 -c "import numpy as np; np.save('$work/bench_data.npy', np.random.default_rng(0).standard_normal((16384, 64)).astype(np.float32))"

now() { date +%s.%N; }

# Samples per second of `brain train`, start-up excluded: the difference of a
# long and a short run over the difference of their step counts.
lobe_samples_per_s() {
  t0=$(now); "$1" train --steps 20 --threads "$threads" --checkpoint "$work/ckpt" >/dev/null 2>&1; t1=$(now)
  "$1" train --steps $((steps + 20)) --threads "$threads" --checkpoint "$work/ckpt" >/dev/null 2>&1; t2=$(now)
  awk -v a="$t0" -v b="$t1" -v c="$t2" -v n="$steps" 'BEGIN { print 256 * n / ((c - b) - (b - a)) }'
}

# peer_samples_per_s HIDDEN COND
peer_samples_per_s() {
  OMP_NUM_THREADS=$threads /usr/bin/python3 "$peer" --threads "$threads" --hidden "$1" \
    --steps "$steps" --cond "$2" | sed -n 's/.*samples_per_s=\([0-9.]*\).*/\1/p'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { print a / b }'; }

# lobe's model of the peer at width $1 with conditioning $2, as $work/aunn_$2_$1.lobe
make_spec() {
  sed "s/HIDDEN/$1/; s/condition concat/condition $2/" "$root/bench/aunn_concat.lobe.in" \
    > "$work/aunn_$2_$1.lobe"
  echo "$work/aunn_$2_$1.lobe"
}
