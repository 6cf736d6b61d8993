# `brain export`: the single_region model (concat and film conditioning) is
# trained briefly and exported for each cell, with and without data; a C
# program written here links the object with -lm alone and prints its
# predictions at the times `brain predict` reports, which must agree to
# relative 1e-4 (of the value, or of the file's mean magnitude near zero).
# A two-region graph exports the region with an in-edge (inputs), and with
# film refuses it with a clear error.
. "$(dirname "$0")/common.sh"
command -v cc >/dev/null 2>&1 || { echo "export: no C compiler, skipped"; exit 77; }
"$bin/single_region_data" "$work/data"

# A program that reads times (one per line) and prints t,channels... as CSV.
# main_c NAME HEADER
main_c() {
  cat <<PROG
#include <stdio.h>
#include "$2"
static float t[4096], out[4096 * $1_CHANNELS];
int main(void) {
  double x;
  int n = 0;
  while (n < 4096 && scanf("%lf", &x) == 1)
    t[n++] = (float)x;
  $1_forward(t, n, NULL, out);
  for (int i = 0; i < n; i++) {
    printf("%.10g", (double)t[i]);
    for (int c = 0; c < $1_CHANNELS; c++)
      printf(",%.7g", out[i * $1_CHANNELS + c]);
    printf("\n");
  }
  return 0;
}
PROG
}

# compare NAME REGION SUBJECT: export, link, run, and check against predict.
compare() {
  ./$1.brain export --region "$2" --subject "$3" --checkpoint "$1.ckpt" -o "$1.$3" \
    > "$1.$3.export.log" 2>&1 || fail "$1 $3 export: $(cat "$1.$3.export.log")"
  [ -f "$1.$3.o" ] && [ -f "$1.$3.h" ] || fail "$1 $3: no object or header"
  [ ! -f "$1.$3.c" ] || fail "$1 $3: the C source was kept without --keep-source"
  main_c "$2_$3" "$1.$3.h" > "$1.$3.main.c"
  cc -std=c99 -o "$1.$3.run" "$1.$3.main.c" "$1.$3.o" -lm || fail "$1 $3: does not link"
  ./$1.brain predict --region "$2" --subject "$3" --from 2 --to 4.5 --checkpoint "$1.ckpt" \
    -o "$1.$3.predict.csv" || fail "$1 $3: predict"
  tail -n +2 "$1.$3.predict.csv" | cut -d, -f1 | "./$1.$3.run" > "$1.$3.export.csv"
  tail -n +2 "$1.$3.predict.csv" | paste -d, - "$1.$3.export.csv" | awk -F, -v name="$1 $3" '
    { n = NF / 2; rows++
      for (i = 2; i <= n; i++) { a[rows, i] = $i; b[rows, i] = $(i + n)
                                 sum += $i < 0 ? -$i : $i; cnt++ } }
    END {
      if (rows != 250) { print name ": " rows " rows"; exit 1 }
      scale = sum / cnt
      for (r = 1; r <= rows; r++) for (i = 2; i <= n; i++) {
        d = a[r, i] - b[r, i]; d = d < 0 ? -d : d
        s = a[r, i] < 0 ? -a[r, i] : a[r, i]; s = s > scale ? s : scale
        if (d / s > worst) worst = d / s
      }
      printf "%s: %d rows, max relative difference %.3g\n", name, rows, worst
      exit worst > 1e-4
    }' || fail "$1 $3: export differs from predict"
}

# run NAME SPEC: build, train 200 steps, compare both subjects.
run() {
  "$lobec" build "$2" -o "$1.brain"
  "./$1.brain" train --steps 200 --seed 2 --checkpoint "$1.ckpt" > "$1.train.log" 2>&1 ||
    fail "$1 train: $(tail -3 "$1.train.log")"
  compare "$1" V1 m1
  compare "$1" V1 m2
}

sed -e 's/mlp       128 x 3/mlp       32 x 2/' -e "s|\"data/|\"$work/data/|" \
  "$src/examples/single_region/single_region.lobe" > concat.lobe
sed 's/condition concat/condition film/' concat.lobe > film.lobe
run concat concat.lobe
run film film.lobe

# Names, --keep-source and the errors.
./concat.brain export --region V1 --subject m1 --checkpoint concat.ckpt -o named.o \
  --name my_model --keep-source > named.log 2>&1 || fail "named export: $(cat named.log)"
[ -f named.c ] && [ -f named.o ] && grep -q 'void my_model_forward' named.h ||
  fail "--name / --keep-source"
expect_status 2 ./concat.brain export --region V1 --subject m1 --checkpoint concat.ckpt \
  -o x --name 1bad
grep -q 'expected a C identifier' last.err || fail "bad --name: $(cat last.err)"
expect_status 2 ./concat.brain export --region V9 --subject m1 --checkpoint concat.ckpt -o x
expect_status 2 ./concat.brain export --region V1 --subject m1 --checkpoint concat.ckpt
expect_status 1 ./concat.brain export --region V1 --subject m1 --checkpoint nowhere -o x
grep -q 'no checkpoint' last.err || fail "missing checkpoint: $(cat last.err)"
expect_status 1 env CC=no-such-compiler ./concat.brain export --region V1 --subject m1 \
  --checkpoint concat.ckpt -o x
grep -q "cannot run the C compiler 'no-such-compiler'" last.err || fail "no cc: $(cat last.err)"
"$lobec" build concat.lobe --no-specialize -o plain.brain
expect_status 1 ./plain.brain export --region V1 --subject m1 --checkpoint concat.ckpt -o x
grep -q 'has no export kernel' last.err || fail "--no-specialize: $(cat last.err)"

# A graph A -> B of one concat AUNN: B's export takes its input u [n, 4].
cat > graph.lobe <<SPEC
subjects m1, m2
aunn cortex {
  index     fourier(bands: 8, max_period: 40s)
  condition concat(module: 4, subject: 4)
  mlp       16 x 2, silu
  embed     4
}
region A, B : cortex
connect A -> B
data A of m1 = csv("$work/data/v1_m1.csv", rate: 100Hz)
data B of m2 = npy("$work/data/v1_m2.npy", rate: 100Hz)
loss mse(A) + mse(B)
train { steps: 20, batch: 32, seed: 1 }
SPEC
"$lobec" build graph.lobe -o graph.brain
./graph.brain train --checkpoint graph.ckpt > graph.train.log 2>&1 || fail "graph train"
./graph.brain export --region B --subject m1 --checkpoint graph.ckpt -o gb > gb.log 2>&1 ||
  fail "graph export: $(cat gb.log)"
grep -q '#define B_m1_INPUTS 4' gb.h || fail "graph export: expected 4 inputs"
sed 's/condition concat/condition film/' graph.lobe > graph_film.lobe
"$lobec" build graph_film.lobe -o graph_film.brain
./graph_film.brain train --checkpoint gf.ckpt > gf.train.log 2>&1 || fail "graph film train"
expect_status 1 ./graph_film.brain export --region B --subject m1 --checkpoint gf.ckpt -o gf
grep -q 'has no export kernel' last.err || fail "film with inputs: $(cat last.err)"
echo "export: ok"
