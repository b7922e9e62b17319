#!/usr/bin/env bash
# Non-finite steps on 2 ranks: NaN gradients injected on rank 1 at step 3 (fault.nan_at) are caught by the
# all-reduced gradient norm before the update. nonfinite = skip: the step makes no update (the weights after
# it are those of step 2, bit for bit), is logged with its samples, and the run goes on and resumes exactly;
# nonfinite = stop: the run stops naming the step and its samples, and `latest` stays on finite weights;
# skip_grad_norm: an exploding norm is handled the same way.
source "$(dirname "$0")/common.sh"
S=(--global_batch=4 --zero=1 --save_every=2)
NAN=(--fault.nan_at=3 --fault.rank=1)

train 2 "$WORK/two" "${S[@]}" --steps=2 > "$WORK/two.log" 2>&1
train 2 "$WORK/skip3" "${S[@]}" --steps=3 "${NAN[@]}" > "$WORK/skip3.log" 2>&1
grep -q "step 3 skipped (no update): gradient norm -\?nan" "$WORK/skip3.log" || fail "step 3 was not reported as skipped"
grep -q '"step": 3, "skipped": "gradient norm -\?nan, loss [-0-9.e+]*", "samples": \[8, 9, 10, 11\]' "$WORK/skip3/metrics.jsonl" \
  || fail "metrics.jsonl lacks the skipped step with the global batch's samples"
"$BIN/lcc-ckpt-compare" "$(latest "$WORK/two")" "$(latest "$WORK/skip3")" 0 || fail "the skipped step changed the weights"
echo "ok: $(grep -o 'step 3 skipped.*' "$WORK/skip3.log"); the weights equal step 2's bit for bit"

# the run goes on after the skip, and a kill + resume across it is exact
train 2 "$WORK/full" "${S[@]}" --steps=6 "${NAN[@]}" > "$WORK/full.log" 2>&1
grep -q "# 1 of 6 steps skipped" "$WORK/full.log" || fail "the summary does not count the skipped step"
if train 2 "$WORK/cut" "${S[@]}" --steps=6 "${NAN[@]}" --fault.kill_after=4 > "$WORK/cut1.log" 2>&1; then fail "the killed run exited cleanly"; fi
train 2 "$WORK/cut" "${S[@]}" --steps=6 "${NAN[@]}" > "$WORK/cut2.log" 2>&1
grep -q "resuming from .*step-00000004" "$WORK/cut2.log" || fail "did not resume from step 4"
compare "$WORK/full" "$WORK/cut" 0 || fail "resume across the skipped step is not exact"
diff <(losses "$WORK/full" | grep -v nan) <(losses "$WORK/cut" | grep -v nan) > /dev/null || fail "loss logs differ"
echo "ok: 6 steps with step 3 skipped; killed after step 4 and resumed: bit-identical weights and losses"

# a checkpoint that falls on a skipped step waits for the next step that updates
train 2 "$WORK/post" "${S[@]}" --steps=6 --save_every=1 --fault.nan_at=2 > "$WORK/post.log" 2>&1
grep -q "checkpoint postponed: step 2 was skipped" "$WORK/post.log" || fail "the step-2 checkpoint was not postponed"
! grep -q "checkpoint .*/step-00000002 written" "$WORK/post.log" && grep -q "checkpoint .*/step-00000003 written" "$WORK/post.log" \
  || fail "wrong checkpoints written"
echo "ok: the checkpoint of the skipped step 2 was postponed to step 3"

# nonfinite = stop
if train 2 "$WORK/stop" "${S[@]}" --steps=6 --save_every=1 "${NAN[@]}" --nonfinite=stop > "$WORK/stop.log" 2>&1; then
  fail "nonfinite = stop did not stop"; fi
grep -q "error: step 3: gradient norm -\?nan.*samples 8, 9, 10, 11; stopping before the weights change (nonfinite = stop)" \
  "$WORK/stop.log" || fail "no clear message for nonfinite = stop"
[ "$(cat "$WORK/stop/checkpoints/latest")" = step-00000002 ] || fail "latest is not the last finite step"
echo "ok: $(grep -o 'error: step 3.*' "$WORK/stop.log" | head -1)"

# an exploding norm (above skip_grad_norm) on every step: skipped up to max_skips, then the run stops
if train 2 "$WORK/spike" "${S[@]}" --steps=6 --skip_grad_norm=1e-6 --max_skips=2 > "$WORK/spike.log" 2>&1; then
  fail "exploding norms did not stop the run"; fi
[ "$(grep -c "skipped (no update): gradient norm [0-9.e+-]* (above skip_grad_norm)" "$WORK/spike.log")" = 2 ] || fail "not 2 skips"
grep -q "error: step 3: .*stopping: 3 steps in a row failed (max_skips = 2)" "$WORK/spike.log" || fail "no max_skips message"
echo "ok: norms above skip_grad_norm: 2 steps skipped, then $(grep -o 'stopping: [^,]*' "$WORK/spike.log" | head -1)"
echo "PASSED"
