#!/usr/bin/env bash
# Data-path throughput on synthetic LiveCC-shaped data: livecc-prep samples/s (1 and 2 workers), the
# training loader's samples/s on the shards it wrote, and, for scale, FFmpeg's own decode at 2 fps of the
# same videos (`ffmpeg -i v.mp4 -vf fps=2 -f null -`, single-threaded and default threads).
#   bench/data_throughput.sh [BUILD_DIR (default: build)] [N videos (default: 20)] [seconds each (default: 30)]
# Needs livecc-prep and loader_bench built in BUILD_DIR/bin, and the ffmpeg CLI. Work files go to
# $WORK (default: /tmp/livecc-data-bench). Timings depend on what else the machine runs: report its load.
set -euo pipefail

BUILD=$(cd "${1:-build}" && pwd)
N=${2:-20}
SECONDS_EACH=${3:-30}
WORK=${WORK:-/tmp/livecc-data-bench}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PREP=$BUILD/bin/livecc-prep
LOADER=$BUILD/bin/loader_bench
for exe in "$PREP" "$LOADER"; do
  [ -x "$exe" ] || { echo "missing $exe: build the livecc-prep and loader_bench targets first" >&2; exit 2; }
done

mkdir -p "$WORK"
cd "$WORK"
CODEC=mpeg4
case "$(ffmpeg -hide_banner -encoders 2>/dev/null)" in *libx264*) CODEC=libx264 ;; esac

# N videos of 640x360 at 30 fps (YouTube-like H.264 when available), and one streaming sample per video:
# the clip [0.5, length - 0.5] with a word every 0.4 s, plus LiveCC's seek-index line.
for i in $(seq 0 $((N - 1))); do
  v=$(printf "v%02d.mp4" "$i")
  [ -s "$v" ] || ffmpeg -v error -y -f lavfi -i "testsrc2=size=640x360:rate=30:duration=$SECONDS_EACH" \
    -c:v "$CODEC" -pix_fmt yuv420p -g 60 "$v"
done
python3 - "$N" "$SECONDS_EACH" > data.jsonl <<'EOF'
import json, sys
n, secs = int(sys.argv[1]), float(sys.argv[2])
lines = []
for i in range(n):
    start, end = 0.5, secs - 0.5
    words = [[round(t, 1), round(t + 0.3, 1), "word%d" % k] for k, t in enumerate(x * 0.4 + start for x in range(int((end - start - 0.3) / 0.4)))]
    sample = [{"role": "user", "content": [{"type": "video", "video": "v%02d.mp4" % i, "video_start": start, "video_end": end},
                                           {"type": "text", "text": "", "previous": "", "title": "video %d" % i}]},
              {"role": "assistant", "content": [{"type": "text_stream", "text_stream": words}]}]
    lines.append(json.dumps(sample) + "\n")
seeks, pos = [], 0
for l in lines:
    seeks.append(pos)
    pos += len(l)
sys.stdout.write("".join(lines) + json.dumps(seeks))
EOF

echo "# machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the runs"
echo "# $N videos of ${SECONDS_EACH} s, 640x360 @ 30 fps, $CODEC"

declare -A PREP_RATE
for w in 1 2; do
  rm -rf "out$w"
  t0=$(date +%s.%N)
  "$PREP" --input=data.jsonl --output="out$w" --tokenizer="$ROOT/configs/tokenizer/tiny" --workers=$w \
    --samples_per_shard=5 --progress=false > "prep$w.log" 2> "prep$w.err"
  t1=$(date +%s.%N)
  rate=$(python3 -c "print('%.2f' % ($N / ($t1 - $t0)))")
  PREP_RATE[$w]=$rate
  written=$(grep '^written:' "prep$w.log" | awk '{print $2}')
  echo "bench: livecc-prep, $w worker(s): $rate samples/s ($(python3 -c "print('%.2f' % ($rate / $w))") per worker), $written/$N written"
done
echo "# per sample: $(python3 -c "
import json; d=json.load(open('out1/shard-00000.json')); print('%.0f tokens, %.0f frames, %.0f KB of JPEG' % (d['tokens']/d['written'], d['frames']/d['written'], d['frame_bytes']/d['written']/1e3))")"

"$LOADER" "out1" "$N" 2 | grep '^bench:' 

ff_time() {   # seconds per video of ffmpeg's decode at 2 fps
  local t0 t1
  t0=$(date +%s.%N)
  for i in $(seq 0 $((N - 1))); do ffmpeg -v error $1 -i "$(printf "v%02d.mp4" "$i")" -vf fps=2 -f null -; done
  t1=$(date +%s.%N)
  python3 -c "print('%.4f' % (($t1 - $t0) / $N))"
}
FF1=$(ff_time "-threads 1")
FFN=$(ff_time "")
echo "bench: ffmpeg -vf fps=2 -f null: $FF1 s/video single-threaded, $FFN s/video default threads"
python3 - "${PREP_RATE[1]}" "${PREP_RATE[2]}" "$FF1" "$FFN" <<'EOF'
import sys
p1, p2, f1, fn = map(float, sys.argv[1:])
print("ratio: livecc-prep 1 worker takes %.2fx the time of single-threaded ffmpeg decode per video "
      "(%.3f s vs %.3f s); 2 workers scale %.2fx over 1" % ((1 / p1) / f1, 1 / p1, f1, p2 / p1))
print("ratio: ffmpeg default threads vs single-threaded: %.2fx faster" % (f1 / fn))
EOF
echo "# machine load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
