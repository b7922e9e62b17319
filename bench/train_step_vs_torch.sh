#!/usr/bin/env bash
# A training step of the C CPU backend against PyTorch + HF transformers (eager attention, fp32, AdamW) on
# the same tiny model (tests/fixtures/tiny_b), the same batch and the same thread count, in one script.
# Prints both median step times and the ratio. Each C run has its own run directory (a shared one would
# resume the previous run). Needs the build and the reference venv:
#   python3 -m venv .venv-ref && .venv-ref/bin/pip install -r tests/reference/requirements.txt
#   bench/train_step_vs_torch.sh [steps]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv-ref/bin/python}
STEPS=${1:-30}
MODEL=tests/fixtures/tiny_b
TRAIN=build/bin/livecc-train
[ -x "$TRAIN" ] || { echo "build first: launch/test.sh (or cmake --build build)"; exit 1; }
[ -x "$PY" ] || { echo "no reference venv at $PY (see the header of this script)"; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
BATCH=$WORK/batch.safetensors
# Two LiveCC-shaped samples: a 3-group first chunk and 7 one-second chunks of 8x8 patches, 4 words a turn.
"$TRAIN" --model=$MODEL --init=$MODEL --steps=1 --micro_batch=2 --synthetic.chunks=8 --synthetic.grid_h=8 \
  --synthetic.grid_w=8 --synthetic.words=4 --dump_batch="$BATCH" --dry-run >/dev/null

echo "# $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; torch $($PY -c 'import torch; print(torch.__version__)')"
printf "%-8s %-14s %12s %12s %8s\n" threads trainable "C ms/step" "torch ms" "torch/C"
for threads in 1 2; do
  for freeze in visual none; do
    flag=$([ $freeze = visual ] && echo --freeze-visual || true)
    c_ms=$(OMP_NUM_THREADS=$threads "$TRAIN" --model=$MODEL --init=$MODEL --batch_file="$BATCH" --threads=$threads \
             --steps=$STEPS --freeze=$([ $freeze = visual ] && echo visual || true) --lr=2e-5 --log_every=1000000 \
             --out="$WORK/run-$threads-$freeze" --plot=false |
           sed -n 's/.*median step \([0-9.]*\) ms.*/\1/p')
    t_ms=$($PY bench/torch_train_step.py --model $MODEL --batch "$BATCH" --threads $threads --steps $STEPS --warmup 3 \
             --attn eager $flag 2>/dev/null | sed -n 's/.*torch_step_ms=\([0-9.]*\).*/\1/p')
    printf "%-8s %-14s %12.2f %12.2f %8.2f\n" $threads $([ $freeze = visual ] && echo decoder || echo all) "$c_ms" "$t_ms" \
      "$(awk -v a="$t_ms" -v b="$c_ms" 'BEGIN { print a / b }')"
  done
done
