#!/usr/bin/env bash
# Starts a one-node Slurm cluster on localhost (munged, slurmctld, slurmd), all state under $SLURM_DIR.
# Needs root and the Debian packages slurm-wlm and munge. Prints the config path; stop with slurm_down.sh.
set -euo pipefail
SLURM_DIR=${SLURM_DIR:?set SLURM_DIR}
mkdir -p "$SLURM_DIR"/{state,spool,log,run}
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --force 2>/dev/null || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=128 status=none
  chown munge:munge /etc/munge/munge.key && chmod 600 /etc/munge/munge.key
fi
mkdir -p /run/munge /var/lib/munge /var/log/munge
chown munge:munge /run/munge /var/lib/munge /var/log/munge
munge -n >/dev/null 2>&1 || runuser -u munge -- /usr/sbin/munged
MEM=$(( $(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo) - 2048 ))
cat > "$SLURM_DIR/slurm.conf" <<CONF
ClusterName=lcctest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$SLURM_DIR/run/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/run/slurmd.pid
SlurmctldLogFile=$SLURM_DIR/log/slurmctld.log
SlurmdLogFile=$SLURM_DIR/log/slurmd.log
SlurmctldPort=${SLURM_PORT:-6817}
SlurmdPort=$(( ${SLURM_PORT:-6817} + 1 ))
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
ReturnToService=2
JobRequeue=1
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=5
Waittime=0
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$SLURM_DIR/slurm.conf"
/usr/sbin/slurmctld -c -f "$SLURM_CONF"
/usr/sbin/slurmd -c -N localhost -f "$SLURM_CONF"
for _ in $(seq 1 120); do [ "$(sinfo -h -o %T 2>/dev/null)" = idle ] && break; sleep 0.25; done
[ "$(sinfo -h -o %T)" = idle ] || { tail -20 "$SLURM_DIR"/log/*.log; exit 1; }
echo "$SLURM_CONF"
