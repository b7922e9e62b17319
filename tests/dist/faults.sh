#!/usr/bin/env bash
# Checkpoint faults: a SIGKILL in the middle of a checkpoint write leaves the previous checkpoint loadable
# and `latest` on it; a flipped byte is refused by its checksum and resume falls back to the one before;
# an unwritable run directory, a NaN loss, a bad key and an indivisible global batch are clear errors.
source "$(dirname "$0")/common.sh"
S=(--steps=6 --global_batch=2 --save_every=2)
if train 2 "$WORK/kill" "${S[@]}" --fault.kill_in_save=4 > "$WORK/kill1.log" 2>&1; then fail "the killed run exited cleanly"; fi
[ "$(cat "$WORK/kill/checkpoints/latest")" = step-00000002 ] || fail "latest moved off step 2"
[ ! -e "$WORK/kill/checkpoints/step-00000004" ] || fail "a half-written checkpoint has its final name"
ls -a "$WORK/kill/checkpoints" | grep -q '^.tmp-step-00000004$' || fail "no temporary directory of the killed save"
train 2 "$WORK/kill" "${S[@]}" > "$WORK/kill2.log"
grep -q "resuming from .*step-00000002" "$WORK/kill2.log" || fail "did not resume from step 2"
echo "ok: SIGKILL during the save of step 4 left step 2 as latest; the run resumed from it and finished"

train 1 "$WORK/flip" "${S[@]}" > "$WORK/flip1.log"
f="$WORK/flip/checkpoints/step-00000006/optim-00000-of-00001.safetensors"
printf '\xff' | dd of="$f" bs=1 seek=4000 conv=notrunc status=none
train 1 "$WORK/flip" "${S[@]}" --steps=8 > "$WORK/flip2.log" 2>&1
grep -q "step-00000006 refused: .*optim-00000-of-00001.safetensors: checksum mismatch" "$WORK/flip2.log" || fail "no checksum message"
grep -q "resuming from .*step-00000004" "$WORK/flip2.log" || fail "did not fall back to step 4"
echo "ok: $(grep -o 'refused: [^;]*' "$WORK/flip2.log" | head -1)"

touch "$WORK/file"
if train 1 "$WORK/file/run" --steps=1 > "$WORK/unwritable.log" 2>&1; then fail "an unusable run directory was accepted"; fi
grep -q "cannot create directory" "$WORK/unwritable.log" || fail "no clear message for the run directory"
echo "ok: $(grep -o 'error: .*' "$WORK/unwritable.log")"
if train 1 "$WORK/nan" --steps=3 --lr=1e30 --warmup_ratio=0 > "$WORK/nan.log" 2>&1; then fail "a NaN loss went unnoticed"; fi
grep -q "the loss is" "$WORK/nan.log" || fail "no clear message for the NaN loss"
[ ! -e "$WORK/nan/checkpoints/latest" ] || fail "a checkpoint was written after the NaN loss"
echo "ok: $(grep -o 'error: .*' "$WORK/nan.log")"
if train 1 "$WORK/key" --stpes=3 > "$WORK/key.log" 2>&1; then fail "a mistyped key was accepted"; fi
grep -q "did you mean 'steps'" "$WORK/key.log" || fail "no suggestion for the mistyped key"
echo "ok: $(grep -o 'error: .*' "$WORK/key.log")"
if train 3 "$WORK/div" --steps=1 --global_batch=4 > "$WORK/div.log" 2>&1; then fail "an indivisible global batch was accepted"; fi
grep -q "not divisible by micro_batch 1 x world size 3" "$WORK/div.log" || fail "no clear message for the global batch"
echo "ok: $(grep -o 'error: .*' "$WORK/div.log" | head -1)"
echo "PASSED"
