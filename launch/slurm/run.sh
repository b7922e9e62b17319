#!/usr/bin/env bash
# The body of the livecc Slurm jobs (pretrain.sbatch, sft.sbatch): starts one rank per task, forwards the
# pre-timeout signal (sbatch --signal=B:USR1@...) or an scancel --signal=USR1 to the ranks, which save a
# checkpoint and exit with status 99; the job then requeues itself, and the restarted job resumes from the
# latest checkpoint by itself (livecc-train's resume = auto). A collective timeout (status 98: a rank stalled
# or was lost, see collective_timeout) is reported and not requeued: a requeue often lands on the same node.
#   run.sh RUN_CONFIG [livecc-train flags ...]
# Environment: LCC_LAUNCHER = srun (default: srun --mpi=pmix) or mpirun; LCC_BIN = build/bin.
set -u
config=$1
shift
BIN=${LCC_BIN:-build/bin}
case "${LCC_LAUNCHER:-srun}" in
  srun) launch=(srun --mpi=pmix --kill-on-bad-exit=1) ;;
  mpirun)
    launch=(mpirun --bind-to none)
    [ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ;;
  *) echo "run.sh: LCC_LAUNCHER must be srun or mpirun" >&2; exit 2 ;;
esac
echo "livecc: job ${SLURM_JOB_ID:-?} start $((${SLURM_RESTART_COUNT:-0} + 1)) on ${SLURM_JOB_NUM_NODES:-1} node(s), ${SLURM_NTASKS:-1} ranks, $(date -Is)"
# The ranks' stderr is also kept in a file: srun returns the highest code of its tasks, so when the stalled
# task is killed by a signal the live ranks' 98 reads as 128 + signal, and their report is what tells.
errlog=$(mktemp "${TMPDIR:-/tmp}/livecc-stderr.XXXXXX")
"${launch[@]}" "$BIN/livecc-train" --config "$config" "$@" 2> >(tee "$errlog" >&2) &
child=$!
forward() { echo "livecc: signal received at $(date -Is): asking the ranks to checkpoint and stop"; kill -USR1 "$child" 2>/dev/null; }
trap forward USR1 TERM
status=0
while :; do   # wait returns early when a trapped signal arrives; go on until the launcher is gone
  wait "$child"
  status=$?
  kill -0 "$child" 2>/dev/null || break
done
# a rank writes its report a second before it exits, so tee has it by now
if [ "$status" -eq 98 ] || { [ "$status" -ne 0 ] && grep -q "exiting with code 98 (collective timeout)" "$errlog"; }; then
  echo "livecc: a collective timed out (exit code 98): a rank stalled or was lost; not requeueing job ${SLURM_JOB_ID:-?}." \
       "The ranks' reports above ('livecc-train: rank N: ...') name the ranks and hosts that did not arrive: check" \
       "those nodes (exclude them with sbatch --exclude), then resubmit; the run resumes from its latest checkpoint" >&2
  status=98
fi
rm -f "$errlog"
if [ "$status" -eq 99 ]; then
  echo "livecc: checkpoint saved; requeueing job ${SLURM_JOB_ID}"
  scontrol requeue "$SLURM_JOB_ID" && exit 0
  echo "livecc: scontrol requeue failed; resubmit this script to resume" >&2
fi
exit "$status"
