#!/usr/bin/env bash
# Slurm: a real slurmctld + slurmd on localhost; launch/slurm/prep.sbatch prepares the data on 2 ranks (the
# same dataset as one process); launch/slurm/pretrain.sbatch runs the demo pre-training
# config on 2 ranks (srun --mpi=pmix), gets SIGUSR1 in mid-run (scancel --signal=USR1 --batch), checkpoints,
# requeues itself, resumes from the checkpoint by itself, and finishes with the same final parameters as
# an uninterrupted run of the same config.
set -euo pipefail
BIN=${BIN:?set BIN to the bin directory of the build}
if [ "$(id -u)" != 0 ] || ! command -v slurmctld >/dev/null; then
  echo "SKIP: the Slurm test starts its own slurmctld/slurmd and needs root and slurm-wlm (launch/setup.sh installs it)"
  exit 77
fi
WORK=${TEST_TMPDIR:-/tmp/lcc-slurm-test}/slurm
rm -rf "$WORK" && mkdir -p "$WORK"
export SLURM_DIR="$WORK/cluster" SLURM_PORT=${SLURM_PORT:-6917}
export SLURM_CONF=$(bash tests/slurm/slurm_up.sh)
trap 'bash tests/slurm/slurm_down.sh' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fail() { echo "FAIL: $*"; tail -30 "$WORK/job.out" 2>/dev/null; exit 1; }

wait_job() {   # wait_job JOB: until it completes (fails otherwise)
  local state=""
  for _ in $(seq 1 900); do
    state=$(scontrol show job "$1" | grep -o 'JobState=[A-Z]*' | cut -d= -f2)
    [ "$state" = COMPLETED ] && return 0
    case "$state" in FAILED|CANCELLED|TIMEOUT|NODE_FAIL) fail "job $1 ended $state" ;; esac
    sleep 0.2
  done
  fail "job $1 did not complete (state $state)"
}

# a small commentary dataset, prepared as the demo does: by launch/slurm/prep.sbatch on 2 ranks, and by one
# process for comparison (the same manifest: the same shards, byte for byte)
"$BIN/livecc-synth" --output="$WORK/data" --videos=6 --heldout=2 --seconds=12 > "$WORK/synth.log"
PREP=(--config=configs/run/demo-prep.conf --input="$WORK/data/pretrain.jsonl" --mode=pretrain --samples_per_shard=2)
"$BIN/livecc-prep" "${PREP[@]}" --output="$WORK/shards-1" > "$WORK/prep.log" 2>&1
prep_job=$(LCC_BIN="$BIN" sbatch --parsable -N 1 --ntasks-per-node=2 --cpus-per-task=1 --time=10 -o "$WORK/prep-job.out" \
           launch/slurm/prep.sbatch "${PREP[@]}" --output="$WORK/shards")
wait_job "$prep_job"
grep -q "^shards: 3 (3 written by this run, 0 finished before), 2 ranks" "$WORK/prep-job.out" || fail "prep job: not 2 ranks"
cmp -s "$WORK/shards-1/manifest.json" "$WORK/shards/manifest.json" || fail "prep on 2 Slurm ranks made another dataset"
echo "prep job $prep_job: 2 ranks under srun, the same dataset as one process"
RUN=(--data="$WORK/shards" --steps=16 --save_every=4 --threads=1 --plot=false --log_every=1)

# the reference: the same config, 2 ranks, no interruption
mpirun -np 2 --bind-to none "$BIN/livecc-train" --config=configs/run/demo-pretrain.conf "${RUN[@]}" --out="$WORK/ref" > "$WORK/ref.log"

# the job: it holds after step 5 until the signal comes (fault.wait_after), so the signal always lands mid-run
job=$(LCC_CONFIG=configs/run/demo-pretrain.conf LCC_BIN="$BIN" sbatch --parsable -N 1 --ntasks-per-node=2 --gpus-per-node=0 \
      --cpus-per-task=1 --time=30 --signal=B:USR1@60 -o "$WORK/job.out" launch/slurm/pretrain.sbatch \
      "${RUN[@]}" --fault.wait_after=5 --out="$WORK/job")
echo "submitted job $job"
for _ in $(seq 1 600); do
  [ -f "$WORK/job/metrics.jsonl" ] && [ "$(grep -c '"loss"' "$WORK/job/metrics.jsonl")" -ge 5 ] && break
  sleep 0.1
done
scancel --signal=USR1 --batch "$job"
echo "sent SIGUSR1 to job $job at step $(grep -c '"loss"' "$WORK/job/metrics.jsonl")"
for _ in $(seq 1 900); do
  state=$(scontrol show job "$job" | grep -o 'JobState=[A-Z]*' | cut -d= -f2)
  # Slurm holds a requeued job for about two minutes; release it once the first run's step daemons are gone
  if scontrol show job "$job" | grep -q 'Reason=BeginTime' && ! pgrep -f "slurmstepd: \[$job" >/dev/null; then
    scontrol update JobId="$job" StartTime=now 2>/dev/null || true
  fi
  [ "$state" = COMPLETED ] && break
  case "$state" in FAILED|CANCELLED|TIMEOUT|NODE_FAIL) fail "job ended $state" ;; esac
  sleep 0.2
done
[ "$state" = COMPLETED ] || fail "job did not complete (state $state)"
restarts=$(scontrol show job "$job" | grep -o 'Restarts=[0-9]*' | cut -d= -f2)
grep -q "checkpoint saved; requeueing" "$WORK/job.out" || fail "the job did not checkpoint and requeue"
grep -q "resuming from" "$WORK/job.out" || fail "the requeued job did not resume from its checkpoint"
echo "job $job: $(grep -o 'saving a checkpoint at step [0-9]*' "$WORK/job.out"), requeued ($restarts restart), $(grep -o 'resuming from [^:]*' "$WORK/job.out")"
"$BIN/lcc-ckpt-compare" "$WORK/ref/checkpoints/$(cat "$WORK/ref/checkpoints/latest")" \
  "$WORK/job/checkpoints/$(cat "$WORK/job/checkpoints/latest")" 0 || fail "final parameters differ from the uninterrupted run"
echo "PASSED"
