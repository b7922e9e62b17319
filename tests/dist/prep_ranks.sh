#!/usr/bin/env bash
# livecc-prep over MPI ranks: one job on 1, 2 and 3 ranks makes the same dataset (manifest.json, every
# shard's bytes) from a plain JSONL file, from the same file with LiveCC's seek-index line, and from one whose
# last line has no newline; a job missing shards (a killed run) finishes only them, on another rank count;
# rank 0 prints one progress line for the whole job; max_rss makes workers wait and changes nothing else;
# an error on the ranks ends the job with a message instead of a hang.
source "$(dirname "$0")/common.sh"
"$BIN/livecc-synth" --output="$WORK/data" --videos=11 --heldout=0 --seconds=5 --width=64 --height=64 > "$WORK/synth.log"
SEEK=$WORK/data/pretrain.jsonl    # ends with LiveCC's seek-index line
PLAIN=$WORK/data/plain.jsonl      # the sample lines alone: scanned, a part per rank
sed '$d' "$SEEK" > "$PLAIN"
[ "$(wc -l < "$PLAIN")" = 11 ] && tail -c 1 "$SEEK" | grep -q ']' || fail "expected 11 lines and a seek index"
P=(--config=configs/run/demo-prep.conf --samples_per_shard=2 --workers=1 --progress=true --progress_every=0.2)
prep() {   # prep RANKS OUT [flags...]
  local n=$1 out=$2
  shift 2
  timeout 300 mpirun -np "$n" --bind-to none "$BIN/livecc-prep" "${P[@]}" --output="$out" "$@"
}
same() { cmp -s "$WORK/ref/manifest.json" "$1/manifest.json" || { diff "$WORK/ref/manifest.json" "$1/manifest.json"; fail "$2"; }; }

"$BIN/livecc-prep" "${P[@]}" --input="$PLAIN" --output="$WORK/ref" > "$WORK/ref.log" 2>&1 || { cat "$WORK/ref.log"; fail "1 process"; }
[ "$(ls "$WORK"/ref/shard-*.h5 | wc -l)" = 6 ] || fail "expected 6 shards of 2 samples"
for n in 1 2 3; do
  prep "$n" "$WORK/plain$n" --input="$PLAIN" > "$WORK/plain$n.log" 2>&1 || { cat "$WORK/plain$n.log"; fail "$n ranks"; }
  same "$WORK/plain$n" "$n ranks: another dataset"
done
grep -q "^livecc-prep: 3 ranks (3 reporting, 3 done): 11/11 samples" "$WORK/plain3.log" || fail "no progress line for the job"
grep -q "^shards: 6 (6 written by this run, 0 finished before), 3 ranks" "$WORK/plain3.log" || fail "summary of 3 ranks"
[ "$(grep -c '^# livecc-prep summary' "$WORK/plain3.log")" = 1 ] || fail "one summary, from rank 0"
[ ! -e "$WORK/plain3/.progress" ] || fail "the progress folder was left behind"
echo "ok: 1, 2, 3 ranks: the same manifest and shard checksums; $(grep '3 ranks (3' "$WORK/plain3.log" | tail -1)"

# the same lines with LiveCC's seek index (livecc-synth writes it: the offsets of every line, as the last
# line): rank 0 alone reads it
prep 3 "$WORK/seek" --input="$SEEK" > "$WORK/seek.log" 2>&1 || { cat "$WORK/seek.log"; fail "seek index"; }
same "$WORK/seek" "3 ranks with a seek index: another dataset"
head -c -1 "$PLAIN" > "$WORK/data/nonl.jsonl"   # the last line without its newline
prep 2 "$WORK/nonl" --input="$WORK/data/nonl.jsonl" > "$WORK/nonl.log" 2>&1 || { cat "$WORK/nonl.log"; fail "no newline"; }
same "$WORK/nonl" "2 ranks, no final newline: another dataset"
echo "ok: a seek-indexed file (3 ranks) and a file without its last newline (2 ranks) give the same dataset"

# a killed run: two shards and the manifest gone, a half-written shard and a stale progress folder left
prep 2 "$WORK/killed" --input="$PLAIN" > "$WORK/killed-first.log" 2>&1 || fail "the first run"
rm "$WORK"/killed/shard-00001.* "$WORK"/killed/shard-00004.* "$WORK/killed/manifest.json"
echo junk > "$WORK/killed/shard-00004.h5.tmp"
mkdir -p "$WORK/killed/.progress" && echo "1 5 5 10 10 1" > "$WORK/killed/.progress/rank-00001"
prep 3 "$WORK/killed" --input="$PLAIN" > "$WORK/killed.log" 2>&1 || { cat "$WORK/killed.log"; fail "the rerun failed"; }
grep -q "^shards: 6 (2 written by this run, 4 finished before), 3 ranks" "$WORK/killed.log" || fail "the rerun redid other shards"
grep -q "3 ranks (3 reporting, 3 done): 4/4 samples" "$WORK/killed.log" || fail "the rerun's progress counts old reports"
same "$WORK/killed" "the rerun made another dataset"
echo "ok: a killed 2-rank run finished on 3 ranks: only the 2 missing shards written, the same dataset"

# max_rss below what any process needs: workers take turns, the dataset is the same
"$BIN/livecc-prep" "${P[@]}" --input="$PLAIN" --output="$WORK/capped" --workers=2 --max_rss=1 > "$WORK/capped.log" 2>&1 ||
  { cat "$WORK/capped.log"; fail "max_rss"; }
same "$WORK/capped" "max_rss changed the dataset"
grep -q "resident memory .* is over max_rss = 1 MB: workers wait" "$WORK/capped.log" || fail "no max_rss message"
waits=$(sed -n 's/.*max_rss 1 MB: \([0-9]*\) samples waited for memory.*/\1/p' "$WORK/capped.log")
[ "${waits:-0}" -gt 0 ] || fail "no sample waited under max_rss"
echo "ok: max_rss = 1 MB: $waits samples waited, the same dataset; $(grep '^peak resident' "$WORK/capped.log")"

# an error: an input that does not exist ends every rank with a message, not a hang
if prep 2 "$WORK/bad" --input="$WORK/data/none.jsonl" > "$WORK/bad.log" 2>&1; then fail "a missing input passed"; fi
grep -q "none.jsonl: cannot open" "$WORK/bad.log" || { cat "$WORK/bad.log"; fail "the error is not named"; }
echo "ok: a missing input on 2 ranks: $(grep -o 'rank [0-9]: error: .*' "$WORK/bad.log" | head -1)"
echo "prep_ranks: OK"
