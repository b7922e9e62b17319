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
train 1 "$WORK/flip" "${S[@]}" --steps=8 --override=steps > "$WORK/flip2.log" 2>&1
grep -q "step-00000006 refused: .*optim-00000-of-00001.safetensors: checksum mismatch" "$WORK/flip2.log" || fail "no checksum message"
grep -q "resuming from .*step-00000004" "$WORK/flip2.log" || fail "did not fall back to step 4"
echo "ok: $(grep -o 'refused: [^;]*' "$WORK/flip2.log" | head -1)"

touch "$WORK/file"
if train 1 "$WORK/file/run" --steps=1 > "$WORK/unwritable.log" 2>&1; then fail "an unusable run directory was accepted"; fi
grep -q "cannot create directory" "$WORK/unwritable.log" || fail "no clear message for the run directory"
echo "ok: $(grep -o 'error: .*' "$WORK/unwritable.log")"
if train 1 "$WORK/nan" --steps=4 --lr=1e30 --warmup_ratio=0 --max_skips=1 --save_every=2 > "$WORK/nan.log" 2>&1; then
  fail "weights that make every loss NaN went unnoticed"; fi
grep -q "step 3: .*stopping: 2 steps in a row failed (max_skips = 1), so the weights, not the data, are likely broken since step 1" \
  "$WORK/nan.log" || fail "no clear message for the broken weights"
grep -q "checkpoint postponed: step 2 was skipped" "$WORK/nan.log" || fail "the step-2 checkpoint was not postponed"
[ ! -e "$WORK/nan/checkpoints/latest" ] || fail "a checkpoint was written after the NaN loss"
echo "ok: $(grep -o 'error: .*' "$WORK/nan.log")"
if train 1 "$WORK/key" --stpes=3 > "$WORK/key.log" 2>&1; then fail "a mistyped key was accepted"; fi
grep -q "did you mean 'steps'" "$WORK/key.log" || fail "no suggestion for the mistyped key"
echo "ok: $(grep -o 'error: .*' "$WORK/key.log")"
if train 3 "$WORK/div" --steps=1 --global_batch=4 > "$WORK/div.log" 2>&1; then fail "an indivisible global batch was accepted"; fi
grep -q "not divisible by micro_batch 1 x world size 3" "$WORK/div.log" || fail "no clear message for the global batch"
echo "ok: $(grep -o 'error: .*' "$WORK/div.log" | head -1)"
# values out of range: one clear error naming the key and its range, before anything runs
bad() {   # bad EXPECTED_TEXT flags...
  local want=$1
  shift
  if "$BIN/livecc-train" "${COMMON[@]}" --out="$WORK/bad" --steps=1 "$@" > "$WORK/bad.log" 2>&1; then fail "accepted: $*"; fi
  grep -qF "$want" "$WORK/bad.log" || { cat "$WORK/bad.log"; fail "no clear error for $*"; }
  [ ! -e "$WORK/bad/checkpoints" ] || fail "$* ran before failing"
}
bad "beta1 must be in [0, 1), got 1" --beta1=1
bad "beta2 must be in [0, 1), got -1" --beta2=-1
bad "adam_eps must be in (0, 1], got 0" --adam_eps=0
bad "lr must be in [0, 3.40282e+38] (fp32), got 1e+39" --lr=1e39
bad "nonfinite must be 'skip' or 'stop'" --nonfinite=ignore
bad "plan.world_size and plan.tokens must be >= 1, got 0" --dry-run --plan.world_size=0
bad "plan.world_size and plan.tokens must be >= 1, got -3" --dry-run --plan.world_size=-3
echo "ok: beta1, beta2, adam_eps, lr, nonfinite and plan.world_size out of range are errors naming key and range"
"$BIN/livecc-train" --dry-run --backend=cuda --model=configs/model/qwen2vl-7b.json --plan.world_size=1 > "$WORK/plan.log" 2>&1
grep -q "warning: the plan needs .* more than the 80.00 GiB of one GPU" "$WORK/plan.log" || fail "no warning for a plan over the GPU"
"$BIN/livecc-train" --dry-run --backend=cpu > "$WORK/plan_cpu.log" 2>&1
grep -q "weights (fp32, all: the master weights)" "$WORK/plan_cpu.log" || fail "the cpu plan is not fp32"
! grep -q "bf16\|workspace" "$WORK/plan_cpu.log" || fail "the cpu plan shows a bf16 copy or GPU workspaces"
train 1 "$WORK/synth" --steps=1 > "$WORK/synth.log" 2>&1
grep -q "warning: data is empty: training on synthetic" "$WORK/synth.log" || fail "synthetic training without a word"
echo "ok: a plan over the GPU warns; the cpu plan is fp32; empty data says it trains on synthetic samples"
# a batch file of 3 samples: the loss is their mean, as the same 3 samples from the stream give it
"$BIN/livecc-train" "${COMMON[@]}" --dry-run --micro_batch=3 --dump_batch="$WORK/three.safetensors" > "$WORK/dump.log"
grep -q "wrote 3 samples, .* (synthetic samples)" "$WORK/dump.log" || fail "the dry run did not say what it dumped"
train 1 "$WORK/stream3" --steps=1 --micro_batch=3 > /dev/null 2>&1
train 1 "$WORK/file3" --steps=1 --batch_file="$WORK/three.safetensors" > /dev/null 2>&1
[ "$(losses "$WORK/stream3")" = "$(losses "$WORK/file3")" ] || fail "batch file loss $(losses "$WORK/file3") != $(losses "$WORK/stream3")"
echo "ok: a 3-sample batch file trains with the loss of those 3 samples: $(losses "$WORK/file3")"
if "$BIN/livecc-train" "${COMMON[@]}" --dry-run --dump_batch="$WORK/x.safetensors" --data="$WORK/none" > "$WORK/dd.log" 2>&1; then
  fail "a dry run ignored --data"; fi
grep -q "$WORK/none" "$WORK/dd.log" || fail "the dry run's error does not name the data"
echo "ok: --dry-run --dump_batch reads --data: $(grep -o 'error: .*' "$WORK/dd.log" | head -1)"
echo "PASSED"
