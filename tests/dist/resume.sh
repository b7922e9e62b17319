#!/usr/bin/env bash
# Resume: 10 uninterrupted steps against 6 steps, SIGKILL, resume, 4 steps: bit-identical parameters and
# loss log on the same world size; within 1e-5 when the resumed run has 3 ranks instead of 2.
source "$(dirname "$0")/common.sh"
S=(--steps=10 --global_batch=6 --save_every=2 --zero=1)
train 2 "$WORK/full" "${S[@]}" > "$WORK/full.log"
# SIGKILL right after step 6's checkpoint: a real kill, not a clean exit
if train 2 "$WORK/cut" "${S[@]}" --fault.kill_after=6 > "$WORK/cut1.log" 2>&1; then fail "the killed run exited cleanly"; fi
[ "$(cat "$WORK/cut/checkpoints/latest")" = step-00000006 ] || fail "latest is not step 6 after the kill"
train 2 "$WORK/cut" "${S[@]}" > "$WORK/cut2.log"
grep -q "resuming from .*step-00000006" "$WORK/cut2.log" || fail "the second run did not resume from step 6"
echo "same world size:"
compare "$WORK/full" "$WORK/cut" 0
diff <(losses "$WORK/full") <(losses "$WORK/cut") > /dev/null || fail "loss logs differ"
echo "loss log: 10 lines, identical"
# 2 ranks for 6 steps, then 3 ranks (the optimizer state is resharded from 2 parts to 3)
if train 2 "$WORK/re" "${S[@]}" --fault.kill_after=6 > "$WORK/re1.log" 2>&1; then fail "the killed run exited cleanly"; fi
train 3 "$WORK/re" "${S[@]}" > "$WORK/re2.log"
grep -q "resuming from .*step-00000006: .*written by 2 ranks" "$WORK/re2.log" || fail "the 3-rank run did not resume from the 2-rank checkpoint"
echo "resumed on 3 ranks after 2:"
compare "$WORK/full" "$WORK/re" 1e-5
echo "PASSED"
