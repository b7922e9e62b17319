#!/usr/bin/env bash
# Two prepared datasets with weights in real training runs (2 ranks): a streaming set of 6 samples (pre-training
# mode) and an SFT set of 3 (another synthetic source), --data="A:0.75, B:0.25". Every step's metrics line has
# the samples of its global batch by dataset (summing to the global batch), the summary has this run's totals;
# a kill after step 3 + resume gives the same losses and the same per-dataset counts; other weights on resume
# are refused naming `data`; a bad entry stops the run naming it.
source "$(dirname "$0")/common.sh"
"$BIN/livecc-synth" --output="$WORK/src-a" --videos=6 --heldout=0 --seconds=6 --width=64 --height=64 > "$WORK/synth-a.log"
"$BIN/livecc-synth" --output="$WORK/src-b" --videos=3 --heldout=0 --seconds=5 --width=64 --height=64 --seed=2 \
  > "$WORK/synth-b.log"
"$BIN/livecc-prep" --config=configs/run/demo-prep.conf --input="$WORK/src-a/pretrain.jsonl" --output="$WORK/a" \
  --mode=pretrain --samples_per_shard=2 > "$WORK/prep-a.log" 2>&1 || { cat "$WORK/prep-a.log"; fail "prep of A"; }
"$BIN/livecc-prep" --config=configs/run/demo-prep.conf --input="$WORK/src-b/sft.jsonl" --output="$WORK/b" \
  --mode=sft --samples_per_shard=2 > "$WORK/prep-b.log" 2>&1 || { cat "$WORK/prep-b.log"; fail "prep of B"; }
MIX="$WORK/a:0.75, $WORK/b:0.25"
run() { train_on "$1" "$2" --steps=6 "${@:3}"; }   # run OUT DATA [flags...]
by_data() { grep '"loss"' "$1/metrics.jsonl" | sed 's/.*"samples_by_data": \[\([0-9]*\), \([0-9]*\)\].*/\1 \2/'; }

run "$WORK/run" "$MIX" > "$WORK/run.log" 2>&1 || { tail "$WORK/run.log"; fail "the mixed run failed"; }
grep -q "^# data: 2 datasets: $WORK/a (weight 0.7500, 6 samples, 0.000 epochs drawn), $WORK/b (weight 0.2500, 3 samples" \
  "$WORK/run.log" || fail "the run does not print its datasets and weights"
[ "$(by_data "$WORK/run" | wc -l)" = 6 ] || fail "expected 6 step lines with samples_by_data"
by_data "$WORK/run" | while read -r a b; do [ $((a + b)) = 4 ] || fail "a step's counts $a + $b are not the global batch 4"; done
read -r ta tb < <(by_data "$WORK/run" | awk '{a += $1; b += $2} END {print a, b}')
[ "$ta" -gt "$tb" ] && [ "$tb" -gt 0 ] || fail "24 samples split $ta:$tb for weights 0.75:0.25"
grep -q "^# samples by dataset in this run: $WORK/a $ta (.*), $WORK/b $tb (" "$WORK/run.log" || fail "no per-dataset summary"
echo "ok: 6 steps of 4 samples: $ta from A and $tb from B (weights 0.75/0.25)"
echo "ok: $(grep -o '^# samples by dataset.*' "$WORK/run.log" | cut -c1-200)"

# killed after step 3 (its checkpoint written), resumed: the same losses, the same samples by dataset
if run "$WORK/run2" "$MIX" --save_every=3 --fault.kill_after=3 > "$WORK/run2a.log" 2>&1; then fail "the kill did not happen"; fi
run "$WORK/run2" "$MIX" --save_every=3 > "$WORK/run2b.log" 2>&1 || { tail "$WORK/run2b.log"; fail "the resume failed"; }
grep -q "resuming from .*step-00000003" "$WORK/run2b.log" || fail "did not resume from step 3"
diff <(losses "$WORK/run") <(losses "$WORK/run2") > /dev/null || fail "the resumed run's losses differ"
diff <(by_data "$WORK/run") <(by_data "$WORK/run2") > /dev/null || fail "the resumed run's samples by dataset differ"
echo "ok: killed after step 3 and resumed: identical losses and samples by dataset"

# other weights behind the checkpoint: refused, naming the change
if run "$WORK/run2" "$WORK/a:0.5, $WORK/b:0.5" --steps=8 --override=steps > "$WORK/reweigh.log" 2>&1; then
  fail "a resume with other weights went on"
fi
grep -q "data '$WORK/a:0.75, $WORK/b:0.25' -> '$WORK/a:0.5, $WORK/b:0.5'" "$WORK/reweigh.log" || fail "the refusal does not name data"
echo "ok: other weights on resume: $(grep -o 'error: .*' "$WORK/reweigh.log" | head -1 | cut -c1-160)"

# a bad entry: the error names it
if run "$WORK/run-bad" "$WORK/a:0.75, $WORK/missing:0.25" > "$WORK/bad.log" 2>&1; then fail "a missing dataset went on"; fi
grep -q "error: data entry 2 '$WORK/missing'" "$WORK/bad.log" || fail "the error does not name the entry"
if run "$WORK/run-bad" "$WORK/a:0.75, $WORK/b:0" > "$WORK/bad0.log" 2>&1; then fail "a zero weight went on"; fi
grep -q "error: data entry '$WORK/b:0': the weight must be a positive number" "$WORK/bad0.log" || fail "zero weight not named"
echo "ok: bad entries: $(grep -o 'error: .*' "$WORK/bad.log" | head -1 | cut -c1-160)"
echo "PASSED"
