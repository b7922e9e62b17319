#!/usr/bin/env bash
# The main job, on the CPU backend: installs what is missing, builds, makes the synthetic commentary dataset
# (videos whose every second shows a coloured shape, with word-timed commentary naming it), preps it into
# HDF5 shards, pre-trains the tiny Qwen2-VL with 2 MPI ranks, runs SFT from that checkpoint, and reports
# held-out loss and commentary word accuracy beside the same figures for a model trained without frames.
#   launch/demo.sh            (everything goes to runs/demo; LCC_DEMO_DIR changes that)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${LCC_DEMO_DIR:-runs/demo}
BIN=build/bin
start=$(date +%s)
stamp() { echo "== [$(( $(date +%s) - start )) s] $*"; }

stamp "setup and build"
launch/setup.sh
CUDA_FLAG=ON
command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] || CUDA_FLAG=OFF
cmake -S . -B build -DLCC_WITH_CUDA=$CUDA_FLAG >/dev/null
cmake --build build -j "$(nproc)" --target livecc-synth livecc-prep livecc-train livecc-eval livecc-stream >/dev/null
rm -rf "$OUT" && mkdir -p "$OUT"

stamp "1/5 synthetic dataset: livecc-synth --config configs/run/demo-synth.conf"
"$BIN/livecc-synth" --config configs/run/demo-synth.conf --output="$OUT/data" > "$OUT/synth.log"
tail -n 3 "$OUT/synth.log"

stamp "2/5 livecc-prep: pre-training clips (context: title), SFT and held-out clips (a user query)"
for split in pretrain sft heldout; do
  mode=sft; [ $split = pretrain ] && mode=pretrain
  "$BIN/livecc-prep" --config configs/run/demo-prep.conf --input="$OUT/data/$split.jsonl" --output="$OUT/shards/$split" \
    --mode=$mode > "$OUT/prep-$split.log" 2>&1
  echo "   $split: $(grep -m1 -o 'written: *[0-9]*' "$OUT/prep-$split.log" | tr -s ' '), $(grep -m1 '^tokens:' "$OUT/prep-$split.log")"
done

train_start=$(date +%s)
train() {   # train NAME [flags]: pre-training then SFT, 2 ranks
  local name=$1
  shift
  launch/mpirun.sh -n 2 --config configs/run/demo-pretrain.conf --data="$OUT/shards/pretrain" --out="$OUT/$name/pretrain" \
    "$@" > "$OUT/$name-pretrain.log"
  grep -E '^step .*(/| held)|# done' "$OUT/$name-pretrain.log" | sed 's/^/   /' | tail -n 4
  launch/mpirun.sh -n 2 --config configs/run/demo-sft.conf --init="$OUT/$name/pretrain/checkpoints" --data="$OUT/shards/sft" \
    --heldout="$OUT/shards/heldout" --out="$OUT/$name/sft" "$@" > "$OUT/$name-sft.log"
  grep -E '^step .*(/| held)|# done' "$OUT/$name-sft.log" | sed 's/^/   /' | tail -n 3
}
stamp "3/5 pre-training and SFT of the tiny model, 2 MPI ranks (mpirun)"
train with-frames
stamp "4/5 the same without frames (every patch row at the mean colour)"
train no-frames --blank_frames=true

stamp "5/5 held-out evaluation (teacher-forced: the most likely next word at each transcript word)"
evaluate() {
  "$BIN/livecc-eval" --model=configs/model/tiny.json --init="$OUT/$1/sft/checkpoints" --data="$OUT/shards/heldout" \
    --tokenizer=configs/tokenizer/tiny "${@:2}"
}
with=$(evaluate with-frames)
without=$(evaluate no-frames --blank_frames=true)
train_s=$(( $(date +%s) - train_start ))
field() { echo "$1" | sed -n "s/.*$2 \([0-9.]*%*\).*/\1/p"; }
printf "\n%-24s %16s %26s\n" "" "held-out loss" "commentary word accuracy"
printf "%-24s %16s %26s\n" "model trained on frames" "$(field "$with" "held-out loss")" "$(field "$with" "word accuracy")"
printf "%-24s %16s %26s\n" "model without frames" "$(field "$without" "held-out loss")" "$(field "$without" "word accuracy")"
echo

# Streaming commentary on the held-out clips, as a user would see it: the KV-cached loop says each second's
# words, scored against the transcript. No repetition penalty: this commentary repeats a handful of words
# every second by design, and a penalty on every context token works against the right word. One thread: the
# tiny model gains nothing from two, and OpenMP's barriers stall when other work shares the cores.
stream_start=$(date +%s)
stamp "streaming commentary on the held-out clips (livecc-stream --check: KV cache, greedy)"
"$BIN/livecc-stream" --init="$OUT/with-frames/sft/checkpoints" --tokenizer=configs/tokenizer/tiny \
  --check="$OUT/data/heldout.jsonl" --min_pixels=3136 --repetition_penalty=1 --threads=1 --quiet > "$OUT/stream-check.log"
grep -E '^seconds named right|^chunks named right|^with KV cache|^real-time factor' "$OUT/stream-check.log" | sed 's/^/   /'
echo "   ($(( $(date +%s) - stream_start )) s; the chunks it got wrong are listed in $OUT/stream-check.log)"
train_s=$(( $(date +%s) - train_start ))
echo
echo "training and evaluation: ${train_s} s; whole demo: $(( $(date +%s) - start )) s (logs, metrics and loss plots in $OUT)"
