#!/usr/bin/env bash
# What a resume trusts: state.json is checked by state.sum like every other file (an edited step, consumed or
# world_size is refused, and the run falls back to the checkpoint before); refused checkpoints are set aside,
# never overwritten or pruned; when every checkpoint is refused the run stops unless --fresh; settings that
# change the trajectory (seed, lr, global batch, ...) must match the checkpoint's unless --override names them.
source "$(dirname "$0")/common.sh"
S=(--steps=6 --global_batch=2 --save_every=2)
train 2 "$WORK/a" "${S[@]}" --steps=4 > "$WORK/a1.log" 2>&1
[ -s "$WORK/a/checkpoints/step-00000004/state.sum" ] || fail "no state.sum"
sed -i 's/"consumed": 8,/"consumed": 6,/' "$WORK/a/checkpoints/step-00000004/state.json"
grep -q '"consumed": 6,' "$WORK/a/checkpoints/step-00000004/state.json" || fail "the test could not edit state.json"
# the tools read checkpoints through the same reader: they refuse it too
if "$BIN/livecc-convert" --input="$WORK/a/checkpoints" --output="$WORK/hf" > "$WORK/conv.log" 2>&1; then fail "convert took it"; fi
grep -q "step-00000004/state.json: checksum mismatch" "$WORK/conv.log" || fail "livecc-convert did not refuse the edited state"
train 2 "$WORK/a" "${S[@]}" --steps=4 --override=steps > "$WORK/a2.log" 2>&1 || { cat "$WORK/a2.log"; fail "resume failed"; }
grep -q "step-00000004 refused: .*state.json: checksum mismatch .*edited or is damaged" "$WORK/a2.log" || fail "edited state.json not refused"
[ "$(grep -c "refused:" "$WORK/a2.log")" = 1 ] || fail "the refusal is not printed exactly once"
grep -q "resuming from .*step-00000002" "$WORK/a2.log" || fail "did not fall back to step 2"
grep -q '"consumed": 6,' "$WORK/a/checkpoints/refused-step-00000004/state.json" || fail "the refused checkpoint was not kept aside"
[ -s "$WORK/a/checkpoints/step-00000004/state.sum" ] || fail "step 4 was not written again"
echo "ok: $(grep -o 'refused: [^;]*' "$WORK/a2.log" | head -1)"

# a changed world_size is refused the same way (it used to stop the run instead of falling back)
sed -i 's/"world_size": 2,/"world_size": 3,/' "$WORK/a/checkpoints/step-00000004/state.json"
train 2 "$WORK/a" "${S[@]}" --override=steps > "$WORK/a3.log" 2>&1 || { cat "$WORK/a3.log"; fail "resume failed"; }
grep -q "resuming from .*step-00000002" "$WORK/a3.log" || fail "an edited world_size did not fall back"
[ -d "$WORK/a/checkpoints/refused-step-00000004-2" ] || fail "the second refused step 4 was not kept beside the first"
echo "ok: an edited world_size falls back to step 2; both refused step-4 copies kept"

# every checkpoint refused: no start from scratch on top of them unless --fresh
train 1 "$WORK/b" "${S[@]}" --steps=4 > "$WORK/b1.log" 2>&1
for d in "$WORK"/b/checkpoints/step-*; do printf '\xff' | dd of="$d/state.json" bs=1 seek=10 conv=notrunc status=none; done
if train 1 "$WORK/b" "${S[@]}" > "$WORK/b2.log" 2>&1; then fail "started from scratch on top of refused checkpoints"; fi
grep -q "no checkpoint passes its checks (2 refused, kept as refused-step-\*): not starting from scratch .*--fresh" \
  "$WORK/b2.log" || fail "no clear message when every checkpoint is refused"
if train 1 "$WORK/b" "${S[@]}" > "$WORK/b3.log" 2>&1; then fail "the second try started from scratch"; fi
train 1 "$WORK/b" "${S[@]}" --fresh > "$WORK/b4.log" 2>&1 || fail "--fresh did not start over"
[ -d "$WORK/b/checkpoints/refused-step-00000002" ] && [ -d "$WORK/b/checkpoints/refused-step-00000004" ] || fail "refused ones lost"
[ "$(cat "$WORK/b/checkpoints/latest")" = step-00000006 ] || fail "the fresh run did not finish"
echo "ok: $(grep -o 'error: .*' "$WORK/b2.log" | head -1 | cut -c1-150)..."

# settings that change the trajectory
train 2 "$WORK/c" "${S[@]}" --steps=4 > "$WORK/c1.log" 2>&1
if train 2 "$WORK/c" "${S[@]}" --seed=7 --lr=2e-3 > "$WORK/c2.log" 2>&1; then fail "a changed seed was resumed silently"; fi
grep -q "settings differ from the checkpoint's: steps '4' -> '6', lr '0.001' -> '0.002', seed '42' -> '7'.*--override=steps,lr,seed" \
  "$WORK/c2.log" || { grep error "$WORK/c2.log"; fail "the differences are not named"; }
if train 3 "$WORK/c" "${S[@]}" --global_batch=3 --override=steps > "$WORK/c3.log" 2>&1; then fail "a changed global batch passed"; fi
grep -q "global_batch '2' -> '3'" "$WORK/c3.log" || fail "the global batch change is not named"
train 2 "$WORK/c" "${S[@]}" --seed=7 --override=steps,seed > "$WORK/c4.log" 2>&1 || fail "--override did not accept the change"
grep -q "resuming with changed settings (accepted by override): steps '4' -> '6', seed '42' -> '7'" "$WORK/c4.log" || fail "not logged"
grep -q '"step": 4, "override": {"steps": {"from": "4", "to": "6"}, "seed": {"from": "42", "to": "7"}}' "$WORK/c/metrics.jsonl" \
  || fail "the override is not in metrics.jsonl"
echo "ok: $(grep -o 'settings differ.*They change' "$WORK/c2.log" | head -1); accepted with --override and logged"
echo "PASSED"
