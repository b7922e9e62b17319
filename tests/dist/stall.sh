#!/usr/bin/env bash
# A stalled rank does not hang the job: rank R stops itself (SIGSTOP) after step 2; the live ranks' next
# collective passes its deadline (collective_timeout = 5 s), each prints one report naming R and its host
# as not responding, its own step, collectives and sample ids, and the job ends with code 98 well within
# 60 s of the deadline, the stopped rank killed by mpirun. On 2 and 3 ranks.
source "$(dirname "$0")/common.sh"
TIMEOUT=5
HOST=$(hostname)
leftovers() { pgrep -f -- "--out=$WORK/" || true; }
cleanup() { for p in $(leftovers); do kill -CONT "$p" 2>/dev/null; kill -9 "$p" 2>/dev/null; done; }
trap cleanup EXIT

stall() {   # stall NRANKS STOPPED_RANK
  local n=$1 stopped=$2 out="$WORK/np$1" log="$WORK/np$1.log" rc=0 pid t_stop="" t_end
  train "$n" "$out" --steps=6 --global_batch="$n" --collective_timeout=$TIMEOUT --fault.stop_after=2 \
    --fault.rank="$stopped" > "$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 1200); do   # when the rank stopped: the deadline is TIMEOUT seconds after it
    if ps -o stat= -p $(leftovers | tr '\n' ' ') 2>/dev/null | grep -q '^T'; then t_stop=$(date +%s.%N); break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$t_stop" ] || { cat "$log"; fail "$n ranks: rank $stopped never stopped"; }
  wait "$pid" || rc=$?
  t_end=$(date +%s.%N)
  local after=$(awk -v a="$t_stop" -v b="$t_end" -v d=$TIMEOUT 'BEGIN { printf "%.1f", b - a - d }')
  [ "$rc" = 98 ] || { cat "$log"; fail "$n ranks: mpirun exited with $rc, not 98"; }
  awk -v x="$after" 'BEGIN { exit !(x < 60) }' || fail "$n ranks: exited ${after} s after the deadline"
  [ -z "$(leftovers)" ] || fail "$n ranks: processes left behind: $(leftovers | tr '\n' ' ')"
  for r in $(seq 0 $((n - 1))); do
    [ "$r" = "$stopped" ] && continue
    local me="livecc-train: rank $r:"
    grep -qF "$me not arrived: rank $stopped (host $HOST): not responding" "$log" || { cat "$log"; fail "rank $r did not name rank $stopped"; }
    grep -qE "^$me (collective timeout: waited [0-9.]+ s in|collective timeout on rank [0-9]+ .*waiting in) collective #[0-9]+ [a-z_0-9]+ " \
      "$log" || { cat "$log"; fail "rank $r did not name its pending collective"; }
    grep -qE "^$me host .*, step 2 .*sample ids: [0-9]" "$log" || { cat "$log"; fail "rank $r did not give its step and samples"; }
    grep -qE "^$me last completed collective: #[0-9]+ " "$log" || fail "rank $r did not name its last collective"
    grep -qF "$me exiting with code 98" "$log" || fail "rank $r did not report its exit"
    if [ "$n" -gt 2 ]; then grep -qE "^$me in the same collective: rank [0-9]+ \(host " "$log" || fail "rank $r named no rank beside it"; fi
  done
  echo "ok: $n ranks, rank $stopped stopped: exit 98 ${after} s after the deadline; the report of rank $(( stopped ? 0 : 1 )):"
  grep "^livecc-train: rank $(( stopped ? 0 : 1 )):" "$log" | sed 's/^/  /'
}
stall 2 1
stall 3 2
stall 3 0
echo "PASSED"
