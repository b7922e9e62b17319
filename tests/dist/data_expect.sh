#!/usr/bin/env bash
# Shards that do not fit the model or tokenizer of a run are refused when livecc-train or livecc-eval opens
# them, naming both values: a patch-8 model on the patch-14 shards livecc-prep made, and a tokenizer other
# than the one the shards were tokenized with. The matching model and tokenizer train.
source "$(dirname "$0")/common.sh"
"$BIN/livecc-synth" --output="$WORK/data" --videos=2 --heldout=0 --seconds=4 --width=64 --height=64 > "$WORK/synth.log"
"$BIN/livecc-prep" --config=configs/run/demo-prep.conf --input="$WORK/data/pretrain.jsonl" --output="$WORK/shards" \
  --mode=pretrain > "$WORK/prep.log" 2>&1 || { cat "$WORK/prep.log"; fail "prep failed"; }
sed 's/"patch_size": 14, "spatial_patch_size": 14/"patch_size": 8, "spatial_patch_size": 8/' configs/model/tiny.json > "$WORK/p8.json"
grep -q '"patch_size": 8' "$WORK/p8.json" || fail "could not write the patch-8 config"
mkdir -p "$WORK/tok2"
perl -0pe 's/"n g",\n   "m o",/"m o",\n   "n g",/' configs/tokenizer/tiny/tokenizer.json > "$WORK/tok2/tokenizer.json"
cmp -s configs/tokenizer/tiny/tokenizer.json "$WORK/tok2/tokenizer.json" && fail "could not write the other tokenizer"
T=(--lr=1e-3 --threads=1 --plot=false --steps=1 --global_batch=1 --data_threads=1)
expect_refused() {   # expect_refused LOG PATTERN COMMAND...: the command fails with an error matching PATTERN
  local log=$1 pattern=$2
  shift 2
  if "$@" > "$log" 2>&1; then fail "$(basename "$log" .log): ran on shards that do not fit"; fi
  grep -q "error: .*$pattern" "$log" || { cat "$log"; fail "$(basename "$log" .log): the error does not name both values"; }
  echo "ok: $(basename "$log" .log): $(grep -o 'error: .*' "$log" | head -1 | cut -c1-220)"
}

expect_refused "$WORK/train-p8.log" "shard-00000.h5: the shards have patch_size 14, the model .*p8.json has 8" \
  "$BIN/livecc-train" "${T[@]}" --model="$WORK/p8.json" --data="$WORK/shards" --out="$WORK/run-p8"
expect_refused "$WORK/train-tok.log" "tokenizer hash is [0-9a-f]*, the tokenizer .*tok2 has [0-9a-f]*" \
  "$BIN/livecc-train" "${T[@]}" --model=configs/model/tiny.json --tokenizer="$WORK/tok2" --data="$WORK/shards" --out="$WORK/run-tok"
"$BIN/livecc-train" "${T[@]}" --model=configs/model/tiny.json --tokenizer=configs/tokenizer/tiny --data="$WORK/shards" \
  --out="$WORK/run-ok" > "$WORK/train-ok.log" 2>&1 || { cat "$WORK/train-ok.log"; fail "the matching model and tokenizer did not train"; }
echo "ok: the model and tokenizer the shards were made for train"

# livecc-eval: a patch-8 model (weights from a synthetic-data run) on the same shards, and the other tokenizer
"$BIN/livecc-train" "${T[@]}" --model="$WORK/p8.json" --out="$WORK/run-p8-synth" > "$WORK/train-p8-synth.log" 2>&1 ||
  { cat "$WORK/train-p8-synth.log"; fail "the patch-8 model did not train on synthetic samples"; }
expect_refused "$WORK/eval-p8.log" "the shards have patch_size 14, the model .*p8.json has 8" \
  "$BIN/livecc-eval" --model="$WORK/p8.json" --init="$WORK/run-p8-synth/checkpoints" --data="$WORK/shards"
expect_refused "$WORK/eval-tok.log" "tokenizer hash is [0-9a-f]*, the tokenizer .*tok2 has [0-9a-f]*" \
  "$BIN/livecc-eval" --model=configs/model/tiny.json --init="$WORK/run-ok/checkpoints" --data="$WORK/shards" --tokenizer="$WORK/tok2"
echo "data_expect: OK"
