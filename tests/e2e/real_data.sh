# Real recordings through their real readers (docs/data.md): EEG from an EDF
# file, HCP fMRI region time courses from a .mat file and spike counts binned
# from an NWB file, three subjects of one two-region model; then a truncated
# EDF rebound with --data must be refused with exit status 2, naming the file.
. "$(dirname "$0")/common.sh"
data=$src/../shared/data
[ -d "$data" ] || { echo "real_data: skipped: no $data (see docs/data.md)"; exit 77; }

cat > real.lobe <<SPEC
subjects s1, s2, s3
aunn cortex {
  index     fourier(bands: 8, max_period: 1200s)
  condition concat(module: 4, subject: 4)
  mlp       32 x 2, silu
  latent    4
  embed     4
}
region CTX, HPC : cortex
connect CTX -> HPC
data CTX of s1 = edf("$data/eegmat/Subject00_2.edf", channels: [O1, O2, Pz])
data CTX of s2 = mat("$data/hcp/101309/TC_rsfMRI_REST1_LR.mat", var: tc,
                     layout: channels_x_time, rate: 1.3889Hz)
data HPC of s3 = nwb_units("$data/nwb/A8604-211122.nwb", bin: 100ms)
loss mse(CTX) + poisson(HPC)
train { steps: 50, batch: 16, optimizer: adam(lr: 1e-3), seed: 1 }
SPEC
"$lobec" build real.lobe -o brain

./brain info > info.txt
grep -Eq '^ *CTX\.s1 +edf +3 +500 ' info.txt || fail "EEG source: $(grep CTX.s1 info.txt)"
grep -Eq '^ *CTX\.s2 +mat +94 +1\.3889 ' info.txt || fail "fMRI source: $(grep CTX.s2 info.txt)"
grep -Eq '^ *HPC\.s3 +nwb_units +3 +10 .* poisson ' info.txt ||
  fail "spike source: $(grep HPC.s3 info.txt)"

./brain train --steps 50 --checkpoint ck > train.log 2>&1 || fail "train: $(tail -5 train.log)"
grep -q '^trained steps=50 loss=' train.log || fail "no final line: $(tail -3 train.log)"
./brain eval --checkpoint ck > eval.txt || fail "eval"
awk '/^CTX\.s1 +31000 +3 / { a = 1 } /^CTX\.s2 +1200 +94 / { b = 1 } /^HPC\.s3 / { c = 1 }
     END { exit !(a && b && c) }' eval.txt || fail "eval rows: $(cat eval.txt)"

head -c 4000 "$data/eegmat/Subject00_2.edf" > truncated.edf
expect_status 2 ./brain train --steps 5 --data CTX.s1=truncated.edf --checkpoint ck2
grep -q "truncated.edf" last.err || fail "error does not name the file: $(cat last.err)"
echo "real_data: ok"
