#!/usr/bin/env bash
# N ranks == 1 rank with gradient accumulation on the same global batch, and ZeRO-1/2 == plain data
# parallel: parameters after 5 steps within 1e-5 (L2 norm of the difference over L2 norm of the parameters).
source "$(dirname "$0")/common.sh"
S=(--steps=5 --global_batch=6)
train 1 "$WORK/r1" "${S[@]}" --zero=0 > "$WORK/r1.log"
train 2 "$WORK/r2" "${S[@]}" --zero=0 > "$WORK/r2.log"
train 3 "$WORK/r3" "${S[@]}" --zero=0 > "$WORK/r3.log"
train 2 "$WORK/z1" "${S[@]}" --zero=1 > "$WORK/z1.log"
train 2 "$WORK/z2" "${S[@]}" --zero=2 --bucket_mb=1 > "$WORK/z2.log"
train 3 "$WORK/z2b" "${S[@]}" --zero=2 --micro_batch=2 > "$WORK/z2b.log"
echo "2 ranks vs 1 rank x 6 micro-batches:";  compare "$WORK/r1" "$WORK/r2" 1e-5
echo "3 ranks vs 1 rank x 6 micro-batches:";  compare "$WORK/r1" "$WORK/r3" 1e-5
echo "ZeRO-1 vs plain data parallel (2 ranks):"; compare "$WORK/r2" "$WORK/z1" 1e-5
echo "ZeRO-2 vs plain data parallel (2 ranks, 1 MiB buckets):"; compare "$WORK/r2" "$WORK/z2" 1e-5
echo "ZeRO-2, 3 ranks x 2 samples per micro-batch, vs 1 rank:"; compare "$WORK/r1" "$WORK/z2b" 1e-5
echo "PASSED"
