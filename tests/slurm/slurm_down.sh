#!/usr/bin/env bash
# Stops the daemons slurm_up.sh started (by their pid files).
SLURM_DIR=${SLURM_DIR:?set SLURM_DIR}
for f in "$SLURM_DIR"/run/slurmd.pid "$SLURM_DIR"/run/slurmctld.pid; do
  [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null
done
for _ in $(seq 1 40); do
  pgrep -f "slurm(ctld|d) .*$SLURM_DIR" >/dev/null || break
  sleep 0.25
done
exit 0
