#!/usr/bin/env bash
# Training throughput on one GPU, livecc.c's CUDA backend against HF transformers 4.50 (PyTorch, sdpa
# attention, bf16, gradient checkpointing, AdamW) on the same Qwen2-VL-2B-shaped model (random weights,
# frozen ViT as LiveCC) and the same LiveCC-shaped samples of about 8K and 24K tokens, in one script:
# tokens/s, MFU and peak GPU memory (sampled with nvidia-smi for both).
#   bench/gpu_train_bench.sh [steps]          (BUILD=build-gpu PY=python3 to change the defaults)
# MFU = model FLOPs / (step time x 989 TFLOPS, the H100/H200 SXM dense bf16 peak). Model FLOPs of a step
# (QWEN2VL.md 6.2): decoder 6 N_mm per token (every matmul weight, lm_head once), causal attention
# 6 L h (S + 1) / 2 per token (the causal half, summed over the sequence), and the frozen ViT's forward:
# 2 (1176 E + D (4 E^2 + 2 E M)) per patch, attention 4 D E per patch per patch of its block, the merger.
# Recompute's extra forward is not counted (model FLOPs, not hardware FLOPs).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
PY=${PY:-python3}
STEPS=${1:-10}
MODEL=configs/model/qwen2vl-2b.json
[ -x "$BUILD/bin/livecc-train" ] || { echo "build first (cmake --build $BUILD)"; exit 1; }
command -v nvidia-smi >/dev/null || { echo "no nvidia-smi: this benchmark needs an NVIDIA GPU"; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"; kill $SAMPLER 2>/dev/null || true' EXIT
mkdir -p "$WORK/hf" && cp "$MODEL" "$WORK/hf/config.json"

peak_sampler() {   # peak memory.used of GPU 0 in MiB while it runs, into $1
  local out=$1 peak=0 v
  while :; do
    v=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 | head -1)
    [ "$v" -gt "$peak" ] && peak=$v && echo "$peak" > "$out"
    sleep 0.1
  done
}
measure() {   # measure NAME command...: runs it with the sampler; prints the peak MiB
  local name=$1; shift
  echo 0 > "$WORK/$name.peak"
  peak_sampler "$WORK/$name.peak" & SAMPLER=$!
  "$@" > "$WORK/$name.log" 2>&1 || { cat "$WORK/$name.log"; exit 1; }
  kill $SAMPLER; wait $SAMPLER 2>/dev/null || true
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
printf "%-8s %-10s %10s %12s %8s %10s\n" tokens stack "step ms" "tokens/s" "MFU" "peak GiB"
for target in 8192 24576; do
  # LiveCC-shaped: a 3-group first chunk, then one chunk per second of 20x28 patches (140 tokens), 6 words a turn
  GH=20 GW=28 WORDS=6
  CHUNKS=$(( (target - 16) / (GH * GW / 4 + WORDS + 24) ))
  S=(--model=$MODEL --freeze=visual --synthetic.chunks=$CHUNKS --synthetic.grid_h=$GH --synthetic.grid_w=$GW
     --synthetic.words=$WORDS --micro_batch=1 --steps=$((STEPS + 2)) --warmup_ratio=0 --plot=false --dist=none)
  "$BUILD/bin/livecc-train" "${S[@]}" --dry-run --dump_batch="$WORK/batch.safetensors" >/dev/null   # the samples, for torch
  measure c "$BUILD/bin/livecc-train" "${S[@]}" --backend=cuda --recompute=true --out="$WORK/c$target"
  c_ms=$(sed -n 's/.*median step \([0-9.]*\) ms.*/\1/p' "$WORK/c.log")
  tokens=$(sed -n 's/.*(\([0-9]*\) tokens per step).*/\1/p' "$WORK/c.log")
  measure t "$PY" bench/torch_train_step.py --model "$WORK/hf" --random-init --batch "$WORK/batch.safetensors" \
    --device cuda --dtype bfloat16 --attn sdpa --gradient-checkpointing --freeze-visual --steps "$STEPS" --warmup 2
  t_ms=$(sed -n 's/.*torch_step_ms=\([0-9.]*\).*/\1/p' "$WORK/t.log")
  # model FLOPs of one step (QWEN2VL.md 6.2, causal attention halved; 2B: N_mm = 1,543,569,408)
  flops=$("$PY" - "$MODEL" "$tokens" "$CHUNKS" "$GH" "$GW" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); T, chunks, gh, gw = map(int, sys.argv[2:])
h, I, L, V = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], c["vocab_size"]
dkv = c["num_key_value_heads"] * (h // c["num_attention_heads"])
n_mm = L * (2 * h * h + 2 * h * dkv + 3 * h * I) + V * h
v = c["vision_config"]; E, D = v["embed_dim"], v["depth"]; M = int(E * v["mlp_ratio"])
patches = (chunks + 2) * gh * gw; block = gh * gw
vit = patches * 2 * (1176 * E + D * (4 * E * E + 2 * E * M)) + 4 * D * E * patches * block + patches / 4 * 2 * (16 * E * E + 4 * E * h)
print(6 * n_mm * T + 6 * L * h * T * (T + 1) / 2 + vit)
PY
)
  for stack in livecc.c torch; do
    ms=$c_ms; peak=$(cat "$WORK/c.peak"); [ $stack = torch ] && ms=$t_ms && peak=$(cat "$WORK/t.peak")
    awk -v n="$tokens" -v st=$stack -v ms="$ms" -v f="$flops" -v p="$peak" \
      'BEGIN { printf "%-8d %-10s %10.1f %12.0f %7.1f%% %10.2f\n", n, st, ms, n / (ms / 1e3), 100 * f / (ms / 1e3) / 989e12, p / 1024 }'
  done
  awk -v a="$t_ms" -v b="$c_ms" 'BEGIN { printf "         livecc.c / torch tokens/s: %.2fx\n", a / b }'
done
