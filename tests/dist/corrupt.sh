#!/usr/bin/env bash
# Damaged data in real training runs (2 ranks, micro_batch = 1, LiveCC's setting) on shards livecc-prep made:
# a truncated shard, a deleted shard and a broken frame. skip_corrupt = true (default): each corrupt sample is
# replaced by the next sample of the order, every step has its global batch, the skips are summed over ranks
# into metrics.jsonl and the summary, and a kill + resume gives the same losses; skip_corrupt = false: the run
# stops naming the shard and the sample.
source "$(dirname "$0")/common.sh"
"$BIN/livecc-synth" --output="$WORK/data" --videos=6 --heldout=0 --seconds=6 --width=64 --height=64 > "$WORK/synth.log"
"$BIN/livecc-prep" --config=configs/run/demo-prep.conf --input="$WORK/data/pretrain.jsonl" --output="$WORK/good" \
  --mode=pretrain --samples_per_shard=2 > "$WORK/prep.log" 2>&1
[ "$(ls "$WORK"/good/*.h5 | wc -l)" = 3 ] || fail "expected 3 shards"
run() { train_on "$1" "$2" --steps=4 "${@:3}"; }   # run OUT DATA [flags...]
damaged() { rm -rf "$WORK/$1" && cp -r "$WORK/good" "$WORK/$1"; echo "$WORK/$1"; }
steps_done() { grep -c '"loss"' "$1/metrics.jsonl"; }
skipped() { grep '"loss"' "$1/metrics.jsonl" | tail -1 | sed 's/.*"skipped_samples": \([0-9]*\).*/\1/'; }

run "$WORK/run-good" "$WORK/good" > "$WORK/good.log" 2>&1 || { cat "$WORK/good.log"; fail "the clean run failed"; }
[ "$(skipped "$WORK/run-good")" = 0 ] || fail "a clean run skipped samples"

# 1. a truncated shard (the manifest's size catches it before HDF5 reads it)
cut=$(damaged cut)
truncate -s 5000 "$cut/shard-00001.h5"
run "$WORK/run-cut" "$cut" > "$WORK/cut.log" 2>&1 || { tail "$WORK/cut.log"; fail "skip_corrupt did not carry on"; }
[ "$(steps_done "$WORK/run-cut")" = 4 ] && [ "$(skipped "$WORK/run-cut")" -gt 0 ] || fail "truncated: steps or skips wrong"
grep -q "loader: skipped .*shard-00001.h5: 5000 bytes, but .* says .*(reading sample [0-9]); replaced by the next sample" \
  "$WORK/cut.log" || fail "the skip does not name shard and sample"
grep -q "# $(skipped "$WORK/run-cut") corrupt samples skipped, each replaced" "$WORK/cut.log" || fail "no summary of the skips"
echo "ok: truncated shard: 4 steps of 4 samples, $(skipped "$WORK/run-cut") samples replaced (summed over ranks)"
if run "$WORK/run-cut-strict" "$cut" --skip_corrupt=false > "$WORK/cut-strict.log" 2>&1; then fail "skip_corrupt = false went on"; fi
grep -q "error: .*shard-00001.h5: 5000 bytes, .*(reading sample [0-9])" "$WORK/cut-strict.log" || fail "the stop does not name shard and sample"
echo "ok: skip_corrupt = false: $(grep -o 'error: .*' "$WORK/cut-strict.log" | head -1 | cut -c1-160)"

# 2. a deleted shard; killed after step 2 and resumed: the replacements repeat, the losses are the same
del=$(damaged del)
rm "$del/shard-00002.h5"
run "$WORK/run-del" "$del" > "$WORK/del.log" 2>&1 || fail "a deleted shard stopped the run"
[ "$(steps_done "$WORK/run-del")" = 4 ] && [ "$(skipped "$WORK/run-del")" -gt 0 ] || fail "deleted: steps or skips wrong"
if run "$WORK/run-del2" "$del" --save_every=2 --fault.kill_after=2 > "$WORK/del2a.log" 2>&1; then fail "the kill did not happen"; fi
run "$WORK/run-del2" "$del" --save_every=2 > "$WORK/del2b.log" 2>&1 || fail "the resume failed"
grep -q "resuming from .*step-00000002" "$WORK/del2b.log" || fail "did not resume from step 2"
diff <(losses "$WORK/run-del") <(losses "$WORK/run-del2") > /dev/null || fail "the resumed run's losses differ"
echo "ok: deleted shard: 4 steps, $(skipped "$WORK/run-del") replaced; killed after step 2 and resumed: identical losses"

# 3. a broken frame: the bytes after the first JPEG's start-of-image marker in shard 0 zeroed
bad=$(damaged bad)
offs=$(LC_ALL=C grep -obUaP '\xff\xd8\xff' "$bad/shard-00000.h5" || true)
off=${offs%%:*}
[ -n "$off" ] || fail "no JPEG frame found in the shard"
dd if=/dev/zero of="$bad/shard-00000.h5" bs=1 seek=$((off + 2)) count=600 conv=notrunc status=none
run "$WORK/run-bad" "$bad" > "$WORK/bad.log" 2>&1 || { tail "$WORK/bad.log"; fail "a broken frame stopped the run"; }
[ "$(steps_done "$WORK/run-bad")" = 4 ] && [ "$(skipped "$WORK/run-bad")" -gt 0 ] || fail "broken frame: steps or skips wrong"
grep -q "loader: skipped .*shard-00000.h5.*sample 0.*frame 0.*replaced by the next sample" "$WORK/bad.log" || fail "no message naming the frame"
if run "$WORK/run-bad-strict" "$bad" --skip_corrupt=false > "$WORK/bad-strict.log" 2>&1; then fail "skip_corrupt = false went on"; fi
grep -q "error: .*shard-00000.h5.*sample 0.*frame 0" "$WORK/bad-strict.log" || fail "the stop does not name shard, sample and frame"
echo "ok: broken frame: $(grep -o 'loader: skipped .*' "$WORK/bad.log" | head -1 | cut -c1-160)"
echo "PASSED"
