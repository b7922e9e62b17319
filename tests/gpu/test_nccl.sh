#!/bin/bash
# The NCCL communicator on GPUs (tests/gpu/nccl_check.c): one process (world size 1, with or without MPI in
# the build), then 2 ranks under mpirun when the build has MPI and 2 GPUs exist. Exit 77 (skip) without a GPU.
# Environment: BIN (the nccl_check binary's folder), HAVE_MPI (1 when built with MPI).
set -u
check="$BIN/nccl_check"
gpus=$("$check" --gpus) || { echo "FAIL: $check --gpus"; exit 1; }
if [ "$gpus" -lt 1 ]; then
  "$check"   # prints the reason
  exit 77
fi
"$check" || { echo "FAIL: one rank"; exit 1; }
if [ "${HAVE_MPI:-0}" = 1 ] && [ "$gpus" -ge 2 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  mpirun -np 2 --bind-to none "$check" </dev/null || { echo "FAIL: two ranks"; exit 1; }
else
  echo "note: the 2-rank run needs MPI in the build and 2 GPUs (MPI: ${HAVE_MPI:-0}, GPUs: $gpus)"
fi
echo ok
