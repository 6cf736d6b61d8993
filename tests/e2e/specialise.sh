# Specialised training equals unspecialised training: the single_region
# model, with concat and with film conditioning, and the visual_pathway graph
# (windows of several regions, a delayed feedback), as it is and with film
# cortex (whose input rows spec folds too), are built with and without
# --no-specialize and trained 500 steps from the same seed. Every logged loss
# must agree to relative 1e-4 and the final parameters closely (float sums
# run in another order, so bit equality is not expected).
. "$(dirname "$0")/common.sh"
"$bin/single_region_data" "$work/data"
"$bin/visual_pathway_data" "$work/data" > /dev/null

# The parameter values of DIR/checkpoint.bin (docs/cli.md), one per line.
ckpt_values() {
  od -An -v -t u1 "$1/checkpoint.bin" | awk '
    { for (i = 1; i <= NF; i++) b[n++] = $i }
    function u32(at) { return b[at] + 256 * (b[at+1] + 256 * (b[at+2] + 256 * b[at+3])) }
    function f32(at,   bits, e, m) {
      bits = u32(at); e = int(bits / 8388608) % 256; m = bits % 8388608
      v = e == 0 ? m * 2 ^ -149 : (1 + m / 8388608) * 2 ^ (e - 127)
      return bits >= 2147483648 ? -v : v
    }
    END {
      at = 12; np = u32(at); at += 4
      for (p = 0; p < np; p++) {
        len = u32(at); at += 4 + len
        numel[p] = u32(at) * u32(at + 4); at += 8
      }
      ns = u32(at); at += 4
      for (s = 0; s < ns; s++) { len = u32(at); at += 8 + len }
      at += 16
      for (p = 0; p < np; p++) {
        for (i = 0; i < numel[p]; i++) printf "%.9g\n", f32(at + 4 * i)
        at += 12 * numel[p]
      }
    }'
}

# compare NAME: the two runs' logs and checkpoints.
compare() {
  grep '^step=' "$1.spec.log" | sed 's/ samples_per_s.*//' > "$1.spec.loss"
  grep '^step=' "$1.plain.log" | sed 's/ samples_per_s.*//' > "$1.plain.loss"
  [ "$(wc -l < "$1.spec.loss")" -eq 10 ] || fail "$1: expected 10 logged steps"
  paste -d' ' "$1.spec.loss" "$1.plain.loss" | awk -v name="$1" '{
    split($2, a, "="); split($4, b, "=")
    d = a[2] - b[2]; d = d < 0 ? -d : d
    if (d > 1e-4 * (b[2] < 0 ? -b[2] : b[2])) { print name ": " $0; bad = 1 }
  } END { exit bad }' || fail "$1: specialised losses differ"
  ckpt_values "$1.spec" > "$1.spec.values"
  ckpt_values "$1.plain" > "$1.plain.values"
  paste -d' ' "$1.spec.values" "$1.plain.values" | awk -v name="$1" '{
    d = $1 - $2; d = d < 0 ? -d : d
    s = ($2 < 0 ? -$2 : $2); s = s > 1e-2 ? s : 1e-2
    if (d / s > worst) worst = d / s
    n++
  } END {
    printf "%s: %d parameters, max relative difference %.3g\n", name, n, worst
    exit n == 0 || worst > 1e-2
  }' || fail "$1: final parameters differ"
}

# run NAME SPEC: both builds of SPEC trained 500 steps with seed 3.
run() {
  "$lobec" build "$2" -o "$1.spec.brain"
  "$lobec" build "$2" --no-specialize -o "$1.plain.brain"
  for kind in spec plain; do
    "./$1.$kind.brain" train --steps 500 --seed 3 --log-every 50 --checkpoint "$1.$kind" \
      > "$1.$kind.log" 2>&1 || fail "$1 $kind: $(tail -3 "$1.$kind.log")"
  done
  compare "$1"
}

sed 's/mlp       128 x 3/mlp       64 x 2/' "$src/examples/single_region/single_region.lobe" \
  > concat.lobe
sed 's/condition concat/condition film/' concat.lobe > film.lobe
grep -q 'condition film' film.lobe || fail "film: no film conditioning"
run concat concat.lobe
run film film.lobe
cp "$src/examples/visual_pathway/visual_pathway.lobe" graph.lobe
sed 's/condition concat(module: 4, subject: 0)/condition film(module: 4, subject: 0)/' \
  graph.lobe > graph_film.lobe
grep -q 'condition film(module: 4, subject: 0)' graph_film.lobe || fail "graph_film: no film cortex"
run graph graph.lobe
run graph_film graph_film.lobe
# gradcheck compares the merged f64 specialised gradient too
for name in film graph_film; do
  ./$name.spec.brain gradcheck > $name.gradcheck.txt ||
    fail "gradcheck $name: $(tail -3 $name.gradcheck.txt)"
  grep -q '^specialised: max_rel_err=' $name.gradcheck.txt ||
    fail "gradcheck $name skipped the specialised path"
done
echo "specialise: ok"
