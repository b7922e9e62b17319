#!/usr/bin/env bash
# A rehearsal of Live-CC-5M's data stage on one machine, with the real tools on real (small) videos:
#   1. an input the size of LiveCC's: LINES lines in its JSONL format with the seek-index line, pointing at
#      VIDEOS synthetic videos (livecc-synth), and the same lines without the index;
#   2. planning: livecc-prep --dry-run on 1, 2 and 4 ranks (mpirun) opens the input (rank 0 reads the seek
#      index and sends it; a plain file is scanned a part per rank): seconds and peak memory per rank;
#   3. the real prep of the first PREP lines (2 workers): time, CPU per sample, shards, manifest size; then
#      the training loader on the result: open time, resident memory, samples/s;
#   4. per-clip CPU cost of LiveCC-sized clips (45 s windows, 30-60 s being Live-CC-5M's clips, inside 3-minute
#      H.264 videos at 640x360 and 1280x720, 30 fps), and the core-hours for 5,047,208 such clips.
#   bench/scale_rehearsal.sh [BUILD (build)] [LINES (5000000)] [PREP (100000)] [VIDEOS (300)]
# Work files (about 4.5 GB at the default size) go to $WORK (default /tmp/livecc-rehearsal). Needs mpirun,
# ffmpeg and the build's livecc-synth, livecc-prep, loader_bench.
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
LINES=${2:-5000000}
PREP=${3:-100000}
VIDEOS=${4:-300}
WORK=${WORK:-/tmp/livecc-rehearsal}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$BUILD/bin
for exe in livecc-synth livecc-prep loader_bench; do
  [ -x "$BIN/$exe" ] || { echo "missing $BIN/$exe: build it first" >&2; exit 2; }
done
export OMPI_MCA_rmaps_base_oversubscribe=1
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$WORK"
cd "$ROOT"
TIME=(/usr/bin/time -f "%e %U %S %M")   # wall s, user s, sys s, max RSS kB
echo "# $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GB; load $(cut -d' ' -f1 /proc/loadavg)"

# 1. the input
if [ ! -s "$WORK/data/pretrain.jsonl" ]; then
  "$BIN/livecc-synth" --output="$WORK/data" --videos="$VIDEOS" --heldout=0 --seconds=6 --width=64 --height=64 > "$WORK/synth.log"
fi
BIG=$WORK/data/big.jsonl PLAIN=$WORK/data/big-plain.jsonl
if [ ! -s "$BIG" ] || [ "$(wc -l < "$PLAIN")" != "$LINES" ]; then
  t0=$(date +%s.%N)
  # the synthetic samples cycled to LINES lines, then LiveCC's seek index ([0] + cumsum(line lengths)[:-1])
  sed '$d' "$WORK/data/pretrain.jsonl" | awk -v n="$LINES" '{ l[NR] = $0 } END { for (i = 0; i < n; i++) print l[i % NR + 1] }' > "$PLAIN"
  { cat "$PLAIN"; LC_ALL=C awk 'BEGIN { printf "[" } { printf "%s%.0f", (NR > 1 ? ", " : ""), off; off += length($0) + 1 } END { printf "]" }' "$PLAIN"; } > "$BIG"
  printf "input: written in %.1f s\n" "$(echo "$(date +%s.%N) - $t0" | bc)"
fi
printf "input: %s lines; with seek index %.2f GB, its index line %.1f MB\n" "$LINES" "$(stat -c %s "$BIG" | awk '{print $1 / 1e9}')" \
  "$(echo "$(stat -c %s "$BIG") - $(stat -c %s "$PLAIN")" | bc | awk '{print $1 / 1e6}')"

# 2. planning
P=(--config=configs/run/demo-prep.conf --progress=false)
for file in "$BIG" "$PLAIN"; do
  what=$([ "$file" = "$BIG" ] && echo "seek index" || echo "plain (scanned)")
  for n in 1 2 4; do
    out=$(mpirun -np "$n" --bind-to none "$BIN/livecc-prep" "${P[@]}" --input="$file" --output="$WORK/plan" --dry-run |
          grep '^plan: rank')
    slowest=$(echo "$out" | sed -n 's/.*opened in \([0-9.]*\) s.*/\1/p' | sort -g | tail -1)
    mem=$(echo "$out" | sed -n 's/.*peak resident memory \([0-9]*\) MB.*/\1/p' | sort -g | tail -1)
    printf "plan: %-16s %d rank%s: input opened in %6.2f s (slowest rank), peak memory %4d MB (largest rank)\n" "$what" "$n" \
      "$([ "$n" = 1 ] && echo " " || echo s)" "$slowest" "$mem"
  done
done

# 3. the real prep of PREP lines, then the loader on its result
head -n "$PREP" "$PLAIN" > "$WORK/data/part.jsonl"
rm -rf "$WORK/shards"
"${TIME[@]}" -o "$WORK/time.txt" "$BIN/livecc-prep" "${P[@]}" --input="$WORK/data/part.jsonl" --output="$WORK/shards" \
  --workers=2 > "$WORK/prep.log" 2>&1
read -r wall user sys maxkb < "$WORK/time.txt"
written=$(sed -n 's/^written: *//p' "$WORK/prep.log")
shards=$(ls "$WORK"/shards/shard-*.h5 | wc -l)
printf "prep: %s samples (%s written) in %.0f s with 2 workers: %.1f samples/s, %.2f CPU-ms per sample; %d shards, %.1f GB, manifest %d bytes; peak memory %d MB\n" \
  "$PREP" "$written" "$wall" "$(echo "$PREP / $wall" | bc -l)" "$(echo "($user + $sys) * 1000 / $PREP" | bc -l)" "$shards" \
  "$(du -sb "$WORK/shards" | awk '{print $1 / 1e9}')" "$(stat -c %s "$WORK/shards/manifest.json")" $((maxkb / 1024))
"$BIN/loader_bench" "$WORK/shards" 2000 2 | sed 's/^bench: /loader: /'

# 4. per-clip cost of LiveCC-sized clips, and the core-hours for Live-CC-5M
for size in 640x360 1280x720; do
  dir=$WORK/clips-$size
  mkdir -p "$dir"
  for i in 0 1 2 3; do
    [ -s "$dir/v$i.mp4" ] || ffmpeg -v error -y -f lavfi -i "testsrc2=size=$size:rate=30:duration=180" -c:v libx264 \
      -preset veryfast -pix_fmt yuv420p "$dir/v$i.mp4"
  done
  python3 - "$dir" > "$dir/clips.jsonl" <<'EOF'
import json, sys
for i in range(4):
    start, end = 60.0 + 10 * i, 105.0 + 10 * i   # 45 s windows inside the 3-minute videos
    words = [[round(start + 0.4 * k, 1), round(start + 0.4 * k + 0.3, 1), "w%d" % k] for k in range(int((end - start) / 0.4))]
    print(json.dumps([{"role": "user", "content": [{"type": "video", "video": "v%d.mp4" % i, "video_start": start, "video_end": end},
                      {"type": "text", "text": "", "title": "t"}]},
                      {"role": "assistant", "content": [{"type": "text_stream", "text_stream": words}]}]))
EOF
  rm -rf "$dir/out"
  "${TIME[@]}" -o "$WORK/time.txt" "$BIN/livecc-prep" --tokenizer=configs/tokenizer/tiny --progress=false \
    --input="$dir/clips.jsonl" --output="$dir/out" --workers=1 > "$dir/prep.log" 2>&1
  read -r wall user sys maxkb < "$WORK/time.txt"
  per=$(echo "($user + $sys) / 4" | bc -l)
  printf "clips %s: 45 s windows of 3-minute H.264 videos (LiveCC's budget): %.2f CPU-s per clip, peak memory %d MB (1 worker) -> Live-CC-5M (5,047,208 clips): %.0f core-hours\n" \
    "$size" "$per" $((maxkb / 1024)) "$(echo "$per * 5047208 / 3600" | bc -l)"
done
echo "rehearsal: done (work files in $WORK)"
