#!/usr/bin/env bash
# Decode + strict 2 fps sampling + resize of a 60 s 640x360 video with lcc_media (media_read: FFmpeg
# demux/decode, our picks, swscale to RGB, our torchvision-exact bicubic resize), beside the ffmpeg command
# doing the same decode / sample / scale on the same file:
#   ffmpeg -i x.mp4 -vf fps=2,scale=W:H -f null -
# Prints the best of 3 wall-clock seconds for each and the ratio. Both decode with one thread (prep runs one
# clip per thread); ffmpeg's own default threading is printed too.
# Usage: bench/media_decode.sh [BUILD_DIR]   (default build; needs the media_read target and ffmpeg)
set -euo pipefail
BUILD=${1:-build}
BIN=$BUILD/tests/loader/media_read
[ -x "$BIN" ] || { echo "build it first: cmake --build $BUILD --target media_read" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
VIDEO=$TMP/x.mp4
ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=640x360:rate=30:duration=60 \
  -c:v libx264 -preset veryfast -pix_fmt yuv420p "$VIDEO"

best() {   # best of 3 wall-clock seconds of a command
  local b=""
  for _ in 1 2 3; do
    local t0 t1
    t0=$(date +%s.%N); "$@" > "$TMP/out" 2>&1; t1=$(date +%s.%N)
    b=$(echo "$t0 $t1 ${b:-1e9}" | awk '{d = $2 - $1; print (d < $3 ? d : $3)}')
  done
  echo "$b"
}

"$BIN" "$VIDEO" > "$TMP/ours.txt"
read -r _ T _ SIZE _ _ < "$TMP/ours.txt"   # frames T size WxH seconds S
W=${SIZE%x*}; H=${SIZE#*x}
ours=$(best "$BIN" "$VIDEO")
ff1=$(best ffmpeg -hide_banner -loglevel error -threads 1 -i "$VIDEO" -vf "fps=2,scale=$W:$H" -filter_threads 1 -f null -)
ffn=$(best ffmpeg -hide_banner -loglevel error -i "$VIDEO" -vf "fps=2,scale=$W:$H" -f null -)
echo "video: 60 s 640x360 h264 30 fps -> $T frames of ${W}x${H}  (machine: $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
echo "lcc_media (1 thread)        ${ours} s"
echo "ffmpeg -threads 1           ${ff1} s"
echo "ffmpeg (default threads)    ${ffn} s"
echo "ratio lcc_media / ffmpeg 1-thread: $(echo "$ours $ff1" | awk '{printf "%.2f", $1 / $2}')"
