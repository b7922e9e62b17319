#!/usr/bin/env bash
# Starts livecc-train on several ranks with mpirun, on this node or on the nodes of a hostfile.
#   launch/mpirun.sh -n RANKS [-f HOSTFILE] [-t THREADS_PER_RANK] [livecc-train flags ...]
# Example: launch/mpirun.sh -n 2 --config configs/run/demo-pretrain.conf
# One rank per GPU with the CUDA backend; with the CPU backend each rank runs THREADS_PER_RANK OpenMP
# threads (default: this node's cores divided among its ranks).
set -euo pipefail
cd "$(dirname "$0")/.."
ranks=1 hostfile="" threads=""
while [ $# -gt 0 ]; do
  case "$1" in
    -n) ranks=$2; shift 2 ;;
    -f) hostfile=$2; shift 2 ;;
    -t) threads=$2; shift 2 ;;
    *) break ;;
  esac
done
BIN=${LCC_BIN:-build/bin}
[ -x "$BIN/livecc-train" ] || { echo "mpirun.sh: $BIN/livecc-train not found: build first (launch/test.sh or cmake --build build)" >&2; exit 2; }
if [ -z "$threads" ]; then
  per_node=$ranks
  [ -n "$hostfile" ] && per_node=$(( (ranks + $(grep -cv '^\s*\(#\|$\)' "$hostfile") - 1) / $(grep -cv '^\s*\(#\|$\)' "$hostfile") ))
  threads=$(( $(nproc) / per_node )); [ "$threads" -ge 1 ] || threads=1
fi
args=(-np "$ranks" --bind-to none -x OMP_NUM_THREADS="$threads")
[ -n "$hostfile" ] && args+=(--hostfile "$hostfile")
[ "$ranks" -gt "$(nproc)" ] && args+=(--oversubscribe)
# Open MPI refuses to run as root unless told (containers and CI machines often are root).
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
exec mpirun "${args[@]}" "$BIN/livecc-train" --threads="$threads" "$@"
