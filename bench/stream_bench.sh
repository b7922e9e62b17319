#!/usr/bin/env bash
# Streaming commentary latency with and without the KV cache: the demo's tiny model (launch/demo.sh) on a
# synthetic video, per second side by side with the ratio, and whether the CPU keeps up with real time.
#   bench/stream_bench.sh            (60 s of video, 1 thread; STREAM_SECONDS, STREAM_INIT, STREAM_THREADS, BUILD override)
# Without the cache every second runs the whole context again (frames included), so its latency grows with
# the context; with the cache a second costs only its own tokens. One thread by default: the tiny model gains
# nothing from more, and on a shared machine OpenMP's barriers stall for whole scheduler slices.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BIN=$BUILD/bin
INIT=${STREAM_INIT:-runs/demo/with-frames/sft/checkpoints}
SECS=${STREAM_SECONDS:-60}
THREADS=${STREAM_THREADS:-1}
[ -e "$INIT" ] || { echo "no model at $INIT: run launch/demo.sh first (or set STREAM_INIT)" >&2; exit 1; }
for b in livecc-stream livecc-synth; do   # what it measures is the build you made, not a rebuild of the tree
  [ -x "$BIN/$b" ] || { echo "no $BIN/$b: build first (cmake --build $BUILD --target livecc-stream livecc-synth)" >&2; exit 1; }
done
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

"$BIN/livecc-synth" --config configs/run/demo-synth.conf --output="$TMP/data" --videos=1 --heldout=0 --seconds="$SECS" \
  --seed=7 > /dev/null
VIDEO="$TMP/data/videos/vid-0000.mp4"
# the demo model's settings: 84x84 frames kept as they are, no repetition penalty (see launch/demo.sh)
ARGS=(--init="$INIT" --tokenizer=configs/tokenizer/tiny --video="$VIDEO" --min_pixels=3136 --repetition_penalty=1
      --threads="$THREADS")
"$BIN/livecc-stream" "${ARGS[@]}" > "$TMP/cache.txt"
"$BIN/livecc-stream" "${ARGS[@]}" --no_cache > "$TMP/nocache.txt"

latencies() { awk -F'|' '/ s \| / { sub(/ ms/, "", $2); print $1 "|" $2 }' "$1"; }
echo "# $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $THREADS thread(s); ${SECS} s of 84x84 video, $INIT"
printf "%-18s %14s %16s %8s\n" "chunk (video s)" "cache (ms)" "no cache (ms)" "ratio"
paste -d'|' <(latencies "$TMP/cache.txt") <(latencies "$TMP/nocache.txt" | cut -d'|' -f2) |
  awk -F'|' '{ printf "%-18s %14.2f %16.2f %7.1fx\n", $1, $2, $3, $3 / ($2 > 0 ? $2 : 1e-9) }'
echo
for f in cache nocache; do grep -E '^(with|without) KV cache|^prompt:|^real-time factor' "$TMP/$f.txt"; echo; done
same=$(cmp -s <(awk -F'|' '/ s \| / { print $3 }' "$TMP/cache.txt") <(awk -F'|' '/ s \| / { print $3 }' "$TMP/nocache.txt") && echo yes || echo no)
echo "same commentary with and without the cache: $same"
