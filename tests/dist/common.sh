# Shared by the distributed tests: paths, MPI as root on a small machine, and helpers.
set -euo pipefail
BIN=${BIN:?set BIN to the bin directory of the build}
WORK=${TEST_TMPDIR:-/tmp/lcc-dist-test}/$(basename "$0" .sh)
rm -rf "$WORK" && mkdir -p "$WORK"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# tiny model, synthetic LiveCC-shaped samples, no plots; threads 1 so ranks do not fight over 2 cores
COMMON=(--model=configs/model/tiny.json --lr=1e-3 --warmup_ratio=0.2 --threads=1 --plot=false --log_every=1
        --synthetic.chunks=3 --synthetic.grid_h=4 --synthetic.grid_w=4 --freeze=visual.blocks)
train() {   # train NRANKS OUT [flags...]
  local n=$1 out=$2
  shift 2
  if [ "$n" = 1 ]; then "$BIN/livecc-train" "${COMMON[@]}" --out="$out" "$@"
  else mpirun -np "$n" --bind-to none "$BIN/livecc-train" "${COMMON[@]}" --out="$out" "$@"; fi
}
# 2 ranks of the tiny model on shards at LiveCC's micro_batch 1:   train_on OUT DATA [flags...]
ON_DATA=(--model=configs/model/tiny.json --lr=1e-3 --threads=1 --plot=false --log_every=1 --micro_batch=1
         --global_batch=4 --data_threads=1)
train_on() {
  local out=$1 data=$2
  shift 2
  mpirun -np 2 --bind-to none "$BIN/livecc-train" "${ON_DATA[@]}" --data="$data" --out="$out" "$@"
}
latest() { echo "$1/checkpoints/$(cat "$1/checkpoints/latest")"; }
compare() { "$BIN/lcc-ckpt-compare" "$(latest "$1")" "$(latest "$2")" "$3"; }
# the step, loss, lr and grad norm of each training line of a run's metrics (timings differ between runs)
losses() { grep '"loss"' "$1/metrics.jsonl" | sed 's/"tokens_per_s.*//'; }
fail() { echo "FAIL: $*"; exit 1; }
