#!/usr/bin/env bash
# The mixed-precision paths over MPI on the cpu-bf16 backend (bf16 compute weights all-gathered as 2-byte
# elements, fp32 master shards, bf16 HF weights in checkpoints), as the CUDA backend takes them:
#   - ZeRO-1 against plain data parallel on 2 ranks: bit-identical (the same reduced gradients);
#   - 2 ranks against 1 rank with accumulation: within 1e-3, not 1e-5 as in fp32: the gradient sums' order
#     differs in the last fp32 bit, and a bf16 compute copy turns such a difference into a whole bf16 step
#     (2^-8) wherever a weight or an activation sits near a rounding boundary;
#   - SIGKILL + resume: bit-identical to a run that never stopped.
source "$(dirname "$0")/common.sh"
B=(--backend=cpu-bf16 --global_batch=6)
train 1 "$WORK/r1" "${B[@]}" --steps=5 --zero=0 > "$WORK/r1.log"
train 2 "$WORK/r2" "${B[@]}" --steps=5 --zero=0 > "$WORK/r2.log"
train 2 "$WORK/z1" "${B[@]}" --steps=5 --zero=1 > "$WORK/z1.log"
echo "bf16: ZeRO-1 vs plain data parallel (2 ranks):"; compare "$WORK/r2" "$WORK/z1" 0
echo "bf16: 2 ranks vs 1 rank x 6 micro-batches:"; compare "$WORK/r1" "$WORK/r2" 1e-3
S=("${B[@]}" --steps=8 --save_every=2 --zero=1)
train 2 "$WORK/full" "${S[@]}" > "$WORK/full.log"
if train 2 "$WORK/cut" "${S[@]}" --fault.kill_after=4 > "$WORK/cut1.log" 2>&1; then fail "the killed run exited cleanly"; fi
train 2 "$WORK/cut" "${S[@]}" > "$WORK/cut2.log"
grep -q "resuming from .*step-00000004" "$WORK/cut2.log" || fail "the second run did not resume from step 4"
echo "bf16: killed after step 4, resumed, against uninterrupted:"; compare "$WORK/full" "$WORK/cut" 0
diff <(losses "$WORK/full") <(losses "$WORK/cut") > /dev/null || fail "loss logs differ"
echo "loss log: 8 lines, identical"
echo "PASSED"
