# Checkpoints: an interrupted and resumed run ends bit-identical to an
# uninterrupted one, whether stopped by its step count or by SIGINT.
. "$(dirname "$0")/common.sh"
build_example single_region

./brain train --steps 200 --checkpoint whole > whole.log 2>&1 || fail "train: $(tail -3 whole.log)"

./brain train --steps 80 --checkpoint split > split.log 2>&1 || fail "first half"
./brain train --steps 200 --resume --checkpoint split >> split.log 2>&1 || fail "resume"
cmp -s whole/checkpoint.bin split/checkpoint.bin || {
  ls -l whole split >&2
  fail "resumed checkpoint differs from the uninterrupted one"
}

# SIGINT in the middle of a run: exit 130 with a checkpoint of the last
# whole step; resuming it ends where an uninterrupted run ends.
./brain train --steps 3000 --checkpoint long > long.log 2>&1 || fail "long run"
./brain train --steps 3000 --checkpoint sig > sig.log 2>&1 &
pid=$!
sleep 1
kill -INT $pid 2>/dev/null || true
set +e
wait $pid
status=$?
set -e
case $status in
  130) ;;
  0) echo "note: the run finished before SIGINT arrived" ;;
  *) fail "SIGINT: exit $status, want 130: $(tail -3 sig.log)" ;;
esac
./brain train --steps 3000 --resume --checkpoint sig >> sig.log 2>&1 || fail "resume after SIGINT"
cmp -s long/checkpoint.bin sig/checkpoint.bin || fail "run resumed after SIGINT differs from the uninterrupted one"
echo "resume: ok"
